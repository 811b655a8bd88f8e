// expect: an argument cannot be copied into the task
// run() decay-copies its arguments, as std::thread does: an lvalue unique_ptr cannot be copied.
#include <memory>
#include <utility>
#include <skein/run.hpp>

int main() {
  auto owned = std::make_unique<int>(1);
#ifdef SKEIN_CONTROL
  auto p = skein::run([](std::unique_ptr<int> q) { return *q; }, std::move(owned));
#else
  auto p = skein::run([](std::unique_ptr<int> q) { return *q; }, owned);
#endif
}
