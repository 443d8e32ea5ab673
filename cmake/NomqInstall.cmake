# Install rules: the libraries, their headers, the CMake package (nomqConfig.cmake), a
# pkg-config file, the nomq tool, the docs and the examples. tests/package builds an application
# against the installed package, static and shared.
include(CMakePackageConfigHelpers)
set(_targets nomq_core nomq_openssl nomq_crypto nomq_runtime)
set(NOMQ_MBEDTLS_BACKEND OFF)
if(NOMQ_CRYPTO STREQUAL "mbedtls")
  set(NOMQ_MBEDTLS_BACKEND ON)
endif()
if(TARGET nomq_mbedtls)
  list(APPEND _targets nomq_mbedtls)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindMbedTLS.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
endif()
if(TARGET nomq_asio)
  list(APPEND _targets nomq_asio)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindAsio.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
endif()
if(BUILD_SHARED_LIBS)
  set(NOMQ_SHARED ON)
else()
  set(NOMQ_SHARED OFF)
endif()
install(TARGETS ${_targets} EXPORT nomqTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET nomq)
  install(TARGETS nomq RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nomq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/nomq/export.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nomq)
install(EXPORT nomqTargets NAMESPACE nomq:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nomqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nomqConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nomqConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nomqConfig.cmake ${PROJECT_BINARY_DIR}/nomqConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)

# pkg-config: relocatable (prefix from the file's own place), so `cmake --install --prefix`
# works after configuration.
file(RELATIVE_PATH NOMQ_PC_PREFIX_REL "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" NOMQ_PC_PREFIX_REL "${NOMQ_PC_PREFIX_REL}")
# The archives a static link needs: the selected crypto backend's, and what they link.
set(NOMQ_PC_BACKENDS "-lnomq_${NOMQ_CRYPTO}")
set(NOMQ_PC_REQUIRES_PRIVATE "libcrypto >= 3.0, spdlog, fmt")
set(NOMQ_PC_LIBS_PRIVATE "")
if(NOMQ_CRYPTO STREQUAL "mbedtls")
  set(NOMQ_PC_LIBS_PRIVATE "-lmbedcrypto")
endif()
# A static build's headers are used with NOMQ_STATIC_DEFINE (NOMQ_EXPORT empty, nomq/export.hpp).
set(NOMQ_PC_CFLAGS "")
if(NOT BUILD_SHARED_LIBS)
  set(NOMQ_PC_CFLAGS " -DNOMQ_STATIC_DEFINE")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/nomq.pc.in ${PROJECT_BINARY_DIR}/nomq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/nomq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Docs and examples (share/doc/nomq).
file(GLOB _docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
