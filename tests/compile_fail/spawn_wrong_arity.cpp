// expect: f cannot be called with these arguments
// spawn() with too many arguments.
#include <skein/run.hpp>

int main() {
#ifdef SKEIN_CONTROL
  skein::spawn([](int, int) {}, 1, 2);
#else
  skein::spawn([] {}, 1, 2);
#endif
}
