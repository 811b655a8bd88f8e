// expect-first: skein needs C\+\+20 \(-std=c\+\+20\)
// std: default
// The compiler's default standard (gnu++17 for g++ 12, gnu++14 for clang 14).
#include <skein/skein.hpp>

int main() {
  return skein::run([] { return 0; }).get();
}
