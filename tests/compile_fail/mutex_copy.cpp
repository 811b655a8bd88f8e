// expect: deleted
// A Mutex is not copyable (no primitive is: share them by reference).
#include <skein/mutex.hpp>

int main() {
  skein::Mutex a;
#ifdef SKEIN_CONTROL
  skein::Mutex& b = a;
#else
  skein::Mutex b = a;
#endif
  (void)b;
}
