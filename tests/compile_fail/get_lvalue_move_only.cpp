// expect: cannot be copied: call std::move\(promise\).get\(\)
// get() on an lvalue Promise copies the value: a move-only value needs std::move(p).get().
#include <memory>
#include <utility>
#include <skein/run.hpp>

int main() {
  auto p = skein::run([] { return std::make_unique<int>(1); });
#ifdef SKEIN_CONTROL
  auto v = std::move(p).get();
#else
  auto v = p.get();
#endif
}
