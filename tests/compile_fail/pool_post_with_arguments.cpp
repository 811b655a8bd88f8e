// expect: post\(f\): f must be callable with no arguments
// ThreadPool::post takes a nullary function (bind the arguments, or use run()).
#include <skein/thread_pool.hpp>

int main() {
#ifdef SKEIN_CONTROL
  skein::default_pool().post([] {});
#else
  skein::default_pool().post([](int) {});
#endif
}
