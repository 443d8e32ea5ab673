include(CMakePackageConfigHelpers)
set(_targets nomq_core nomq_openssl nomq_crypto nomq_runtime)
if(TARGET nomq_mbedtls)
  list(APPEND _targets nomq_mbedtls)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindMbedTLS.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
endif()
install(TARGETS ${_targets} EXPORT nomqTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET nomq)
  install(TARGETS nomq RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nomq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT nomqTargets NAMESPACE nomq:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nomqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nomqConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nomqConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nomqConfig.cmake ${PROJECT_BINARY_DIR}/nomqConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nomq)
