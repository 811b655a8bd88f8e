// expect: Promise<T&> is not supported
// A Promise holds a value; a reference goes through std::reference_wrapper.
#include <functional>
#include <skein/promise.hpp>

int main() {
#ifdef SKEIN_CONTROL
  skein::Promise<std::reference_wrapper<int>> p;
#else
  skein::Promise<int&> p;
#endif
}
