#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#ifdef SKEIN_TEST_SINGLE_HEADER
#include <skein/skein.hpp>
#else
#include <skein/detail/fault.hpp>
#endif

int main(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  int rc = ctx.run();
#if defined(SKEIN_FAULT_INJECTION) && SKEIN_FAULT_INJECTION
  // Stress mode: say how much was injected (docs/reliability.md quotes it).
  auto& c = skein::detail::fault::counters();
  std::printf("[fault injection] seed %llu: %llu points, %llu yields, %llu stalls\n",
              static_cast<unsigned long long>(skein::detail::fault::settings().seed),
              static_cast<unsigned long long>(c.points.load()), static_cast<unsigned long long>(c.yields.load()),
              static_cast<unsigned long long>(c.sleeps.load()));
#endif
  return rc;
}
