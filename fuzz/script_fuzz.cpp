// libFuzzer driver for the script binding: decodes the input into a sequence
// of calls — any module function or handle method, with random arguments
// (wrong types, negative and huge numbers, NaN, nested lists and dicts,
// functions that return or raise, handles of the wrong type) and random
// keyword names — through the interpreter-free host of the tests.
//
// Checked: no call crashes (ASan/UBSan), hangs (every call runs as a task
// with a 5 ms deadline, so a call that blocks is cancelled) or lets an
// error escape unconverted: every failure is a ScriptError, and unless it is
// a script's own error (TaskError) its message starts with the call's name.
//
//   clang++ -fsanitize=fuzzer,address,undefined (CMake: -DSKEIN_BUILD_FUZZ=ON)
//   ./script_fuzz fuzz/corpus/script -runs=20000

#include <skein/script.hpp>
#include <skein/skein.hpp>

#include <atomic>
#include <cstdint>
#include <limits>
#include <typeinfo>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../tests/support/script_host.hpp"

namespace {

namespace sc = skein::script;
using sc::Value;
using test::script::Session;
using test::script::TestEnv;

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::int64_t wide() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
    return static_cast<std::int64_t>(v);
  }
};

struct Callable {
  std::string path;
  const sc::NativeFunction* fn;
};

void collect(const sc::Module& m, const std::string& prefix, std::vector<Callable>& out) {
  for (auto& f : m.functions) out.push_back({prefix + std::string(f.name), &f});
  for (auto& s : m.submodules) collect(s, prefix + std::string(s.name) + ".", out);
}

const std::vector<Callable>& natives() {
  static const std::vector<Callable> all = [] {
    std::vector<Callable> v;
    for (auto* m : sc::modules()) collect(*m, std::string(m->name) + ".", v);
    return v;
  }();
  return all;
}

const char* const kKeywords[] = {"x",           "y",       "item",          "maxsize", "workers",
                                 "queue_depth", "initial", "initial_value", "delta",   "timeout",
                                 "value",       "n",       "expected",      "zzz"};

Value gen(Input& in, const std::vector<Value>& handles, int depth) {
  switch (in.byte() % 13) {
    case 0: return {};
    case 1: return static_cast<bool>(in.byte() & 1);
    case 2: return static_cast<std::int64_t>(static_cast<std::int8_t>(in.byte()));
    case 3: return in.wide();
    case 4: {
      static const double specials[] = {2.5, -1.0, 3.0, 0.0, 1e300, -1e300, 1e-9, 1e18, 4e9};
      switch (in.byte() % 12) {
        case 9: return std::numeric_limits<double>::quiet_NaN();
        case 10: return std::numeric_limits<double>::infinity();
        case 11: return -std::numeric_limits<double>::infinity();
        default: return specials[in.byte() % 9];
      }
    }
    case 5: {
      std::string s;
      for (int i = in.byte() % 6; i > 0; --i) s += static_cast<char>('a' + in.byte() % 26);
      return s;
    }
    case 6: {
      sc::List l;
      if (depth < 3)
        for (int i = in.byte() % 4; i > 0; --i) l.push_back(gen(in, handles, depth + 1));
      return l;
    }
    case 7: {
      sc::Dict d;
      if (depth < 3)
        for (int i = in.byte() % 3; i > 0; --i) sc::set(d, gen(in, handles, depth + 1), gen(in, handles, depth + 1));
      return d;
    }
    case 8:
      return test::script::fn("echo", {"a", "b"},
                              [](TestEnv&, std::vector<Value>& a) -> Value { return a.empty() ? Value() : a[0]; });
    case 9:
      return test::script::fn(
          "raise", {"a"}, [](TestEnv&, std::vector<Value>&) -> Value { throw sc::TaskError("raised by the script"); });
    case 10:
      return test::script::opaque_fn(
          [](TestEnv&, std::vector<Value>& a) -> Value { return static_cast<std::int64_t>(a.size()); });
    default:
      if (handles.empty()) return {};
      return handles[in.byte() % handles.size()];
  }
}

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "script_fuzz: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Failed spawned tasks and unread promises are reported: expected here, and counted, not printed.
  static std::atomic<long> reports{0};
  skein::set_unhandled_error_handler([](std::exception_ptr) { reports.fetch_add(1, std::memory_order_relaxed); });
  return 0;
}

/// With the sandbox on: small limits, and what they bound is checked after every call.
constexpr sc::Limits kSandbox{.max_tasks = 6, .max_threads = 3, .max_memory = 0, .max_queue_items = 5};

void check_limits(Session& s, const std::vector<Value>& handles, const std::string& call_name) {
  if (s.rt.admitted_tasks() > kSandbox.max_tasks)
    bug(std::to_string(s.rt.admitted_tasks()) + " tasks admitted past max_tasks after " + call_name);
  if (s.rt.executor().thread_count() > kSandbox.max_threads)
    bug(std::to_string(s.rt.executor().thread_count()) + " threads past max_threads after " + call_name);
  for (auto& h : handles) {
    auto* q = dynamic_cast<sc::QueueObject*>(h.get_if<sc::Handle>()->get());
    if (q && q->queue.size() > kSandbox.max_queue_items)
      bug(std::to_string(q->queue.size()) + " items in a queue past max_queue_items after " + call_name);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  std::vector<Value> handles;
  const std::uint8_t mode = in.byte();
  sc::Runtime::Options opts;
  opts.run_isolation = mode & 1 ? sc::Isolation::clone : sc::Isolation::empty;
  if (mode & 2) opts.limits = kSandbox;  // the sandbox's limits, small enough to be hit
  Session s(opts);
  sc::set(s.main.globals, "g", 1);
  for (int op = 0; op < 48 && !in.empty(); ++op) {
    bool method = (in.byte() & 1) && !handles.empty();
    std::string name;
    Value target;
    if (method) {
      target = handles[in.byte() % handles.size()];
      auto& obj = **target.get_if<sc::Handle>();
      auto ms = obj.methods();
      name = std::string(ms[in.byte() % ms.size()].name);
    } else {
      name = natives()[in.byte() % natives().size()].path;
    }
    std::vector<Value> args;
    for (int i = in.byte() % 5; i > 0; --i) args.push_back(gen(in, handles, 0));
    sc::Kwargs kw;
    for (int i = in.byte() % 4 == 0 ? 1 + in.byte() % 2 : 0; i > 0; --i)
      kw.emplace_back(kKeywords[in.byte() % std::size(kKeywords)], gen(in, handles, 0));
    std::string call_name = method ? std::string((*target.get_if<sc::Handle>())->type_name()) + "." + name : name;
    // Each call is a task with a short deadline: a call that blocks is cancelled.
    auto ctx = s.rt.context().child_with_timeout(std::chrono::milliseconds(5));
    auto p = ctx.run(
        [&]() -> Value { return method ? s.main.method(target, name, args, kw) : s.main.call(name, args, kw); });
    try {
      Value r = p.get();
      if (r.kind() == Value::Kind::handle && handles.size() < 12) handles.push_back(r);
    } catch (const sc::TaskError&) {
    } catch (const sc::ScriptError& e) {
      if (std::string(e.what()).rfind(call_name + ":", 0) != 0)
        bug("error without the call's name: '" + std::string(e.what()) + "' from " + call_name);
    } catch (const skein::Cancelled&) {  // the call's task was cancelled before it started
    } catch (const std::exception& e) {
      bug("unconverted " + std::string(typeid(e).name()) + " '" + e.what() + "' from " + call_name);
    }
    if (mode & 2) check_limits(s, handles, call_name);
  }
  return 0;  // the Session's runtime cancels and waits for every task it started
}
