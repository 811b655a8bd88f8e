// expect: f cannot be called with these arguments
// run() with arguments that do not match f.
#include <skein/run.hpp>

int main() {
#ifdef SKEIN_CONTROL
  auto p = skein::run([](int) {}, 7);
#else
  auto p = skein::run([](int) {}, "str");
#endif
}
