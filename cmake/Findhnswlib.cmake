# Finds Debian's header-only hnswlib (libhnswlib-dev ships no CMake config) and defines hnswlib::hnswlib.
find_path(HNSWLIB_INCLUDE_DIR NAMES hnswlib/hnswlib.h)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(hnswlib REQUIRED_VARS HNSWLIB_INCLUDE_DIR)
if(hnswlib_FOUND AND NOT TARGET hnswlib::hnswlib)
  add_library(hnswlib::hnswlib INTERFACE IMPORTED)
  set_target_properties(hnswlib::hnswlib PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${HNSWLIB_INCLUDE_DIR}")
endif()
mark_as_advanced(HNSWLIB_INCLUDE_DIR)
