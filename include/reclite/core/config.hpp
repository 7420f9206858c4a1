// Build-wide settings: the versioned namespace and the debug-only assertion.
// Everything lives in reclite::v0 (an inline namespace), so two builds of reclite linked into one app get
// distinct symbols instead of a silent ODR clash. Bump v0 when a public type changes layout.
#pragma once

#include <cstdio>
#include <cstdlib>

#define RECLITE_BEGIN_NAMESPACE \
  namespace reclite {           \
  inline namespace v0 {
#define RECLITE_END_NAMESPACE \
  }                           \
  }

#define RECLITE_VERSION_MAJOR 0
#define RECLITE_VERSION_MINOR 1
#define RECLITE_VERSION_PATCH 0

// Invariants the library itself guarantees (never user input: that is checked and returned as an Error).
#ifdef NDEBUG
#define RECLITE_ASSERT(condition) ((void)0)
#else
#define RECLITE_ASSERT(condition)                                                                  \
  ((condition) ? (void)0                                                                           \
               : (std::fprintf(stderr, "reclite: assertion failed: %s (%s:%d)\n", #condition, __FILE__, \
                               __LINE__),                                                          \
                  std::abort()))
#endif
