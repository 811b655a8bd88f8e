// The program every consumer test builds: it includes skein the way a user
// would and prints the version macros and a task's result.
#include <skein/skein.hpp>

#include <cstdio>

int main() {
  skein::Queue<int> q;
  auto sum = skein::run(
      [&q](int x, int y) {
        q.put(x + y);
        return x + y;
      },
      5, 3);
  std::printf("skein %d.%d.%d: %d %d\n", SKEIN_VERSION_MAJOR, SKEIN_VERSION_MINOR, SKEIN_VERSION_PATCH, sum.get(),
              q.get().value_or(-1));
}
