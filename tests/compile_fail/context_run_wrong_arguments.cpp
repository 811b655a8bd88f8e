// expect: f cannot be called with these arguments
// Context::run checks its call as run() does.
#include <string>
#include <skein/context.hpp>

int main() {
  skein::Context ctx;
#ifdef SKEIN_CONTROL
  auto p = ctx.run([](std::string s) { return s.size(); }, "42");
#else
  auto p = ctx.run([](std::string s) { return s.size(); }, 42);
#endif
}
