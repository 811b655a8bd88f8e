// expect-first: skein needs C\+\+20 \(-std=c\+\+20\)
// std: -std=c++17
// Without C++20 the first error is the one that says what to do.
#include <skein/skein.hpp>

int main() {
  return skein::run([] { return 0; }).get();
}
