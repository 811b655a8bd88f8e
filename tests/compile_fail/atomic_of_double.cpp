// expect: constraint|constraints not satisfied
// skein::Atomic is an integer, as the seeds' atomic counter.
#include <skein/atomic.hpp>

int main() {
#ifdef SKEIN_CONTROL
  skein::Atomic<long> a(1);
#else
  skein::Atomic<double> a(1.5);
#endif
}
