# cmake -P run_consumer.cmake: builds NoMQ's libraries (SHARED=ON/OFF), installs them into
# WORK_DIR/prefix, builds consumer/ against the installed package (CMake and pkg-config) and
# runs both programs. Fails with the step's output on the first error.
cmake_minimum_required(VERSION 3.25)
set(build "${WORK_DIR}/build")
set(prefix "${WORK_DIR}/prefix")
set(app "${WORK_DIR}/app")
file(REMOVE_RECURSE "${prefix}" "${app}")

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(launcher)
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
step("configure the libraries" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=${SHARED} -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DNOMQ_BUILD_TESTS=OFF -DNOMQ_BUILD_BENCH=OFF -DNOMQ_BUILD_CLI=OFF -DNOMQ_INSTALL=ON
  -DNOMQ_CRYPTO=${NOMQ_CRYPTO} -DCMAKE_CXX_COMPILER=${CXX} ${launcher})
step("build the libraries" ${CMAKE_COMMAND} --build "${build}")
step("install" ${CMAKE_COMMAND} --install "${build}" --prefix "${prefix}")

# What the prefix holds: the kind of library asked for, the package files, docs and examples.
file(GLOB_RECURSE so_files "${prefix}/*.so*")
file(GLOB_RECURSE a_files "${prefix}/*.a")
if(SHARED AND (NOT so_files OR a_files))
  message(FATAL_ERROR "shared install: expected .so files only, got ${so_files} ${a_files}")
endif()
if(NOT SHARED AND (so_files OR NOT a_files))
  message(FATAL_ERROR "static install: expected .a files only, got ${so_files} ${a_files}")
endif()
file(GLOB_RECURSE pc_file "${prefix}/*/nomq.pc")
file(GLOB_RECURSE config_file "${prefix}/*/nomqConfig.cmake")
foreach(f "${prefix}/share/doc/nomq/api.md" "${prefix}/share/doc/nomq/asio.md"
          "${prefix}/share/doc/nomq/examples/pubsub.cpp" "${prefix}/include/nomq/asio.hpp")
  if(NOT EXISTS "${f}")
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
if(NOT pc_file OR NOT config_file)
  message(FATAL_ERROR "nomq.pc or nomqConfig.cmake not installed")
endif()

# A shared library carries its SONAME; the consumer's package lookup must not need spdlog, fmt
# or nlohmann_json (public headers use none of them; only a static link needs spdlog and fmt).
set(disabled -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
if(SHARED)
  list(APPEND disabled -DCMAKE_DISABLE_FIND_PACKAGE_spdlog=ON -DCMAKE_DISABLE_FIND_PACKAGE_fmt=ON)
  file(GLOB runtime_so "${prefix}/*/libnomq_runtime.so.*.*.*" "${prefix}/*/*/libnomq_runtime.so.*.*.*")
  step("readelf" readelf -d ${runtime_so})
  if(NOT step_output MATCHES "SONAME\\) +Library soname: \\[libnomq_runtime\\.so\\.[0-9]+\\.[0-9]+\\]")
    message(FATAL_ERROR "no SONAME libnomq_runtime.so.MAJOR.MINOR in ${runtime_so}:\n${step_output}")
  endif()
endif()
step("configure the consumer (find_package)" ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${app}"
  -G "${GENERATOR}" -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} ${launcher}
  ${disabled})
step("build the consumer" ${CMAKE_COMMAND} --build "${app}")
step("run the consumer" "${app}/consumer")
message(STATUS "${step_output}")
step("run the Asio consumer" "${app}/consumer_asio")
message(STATUS "${step_output}")

# The same program through pkg-config.
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
set(pc_args --cflags --libs nomq)
if(NOT SHARED)
  set(pc_args --static ${pc_args})
endif()
step("pkg-config" pkg-config ${pc_args})
string(STRIP "${step_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
step("build with pkg-config" ${CXX} -std=c++20 "${CONSUMER_DIR}/main.cpp" -o "${app}/consumer_pc"
  ${pc_flags} "-Wl,-rpath,${pc_dir}/..")
step("run the pkg-config build" "${app}/consumer_pc")
