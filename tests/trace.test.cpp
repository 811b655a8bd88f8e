// Tracing: task identity, the hooks' events in causal order, and the
// recorder's Chrome trace-event JSON (parsed and checked here).
#include "support/common.hpp"

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

using namespace test;
using skein::Promise;

namespace {

// --- a small JSON reader (enough to check the file's structure) -----------------

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> v;
  [[nodiscard]] bool is_object() const { return std::holds_alternative<JsonObject>(v); }
  [[nodiscard]] const JsonObject& object() const { return std::get<JsonObject>(v); }
  [[nodiscard]] const JsonArray& array() const { return std::get<JsonArray>(v); }
  [[nodiscard]] const std::string& str() const { return std::get<std::string>(v); }
  [[nodiscard]] double num() const { return std::get<double>(v); }
};

class JsonReader {
public:
  explicit JsonReader(std::string text) : s_(std::move(text)) {}
  Json parse() {
    Json j = value();
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return j;
  }

private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("JSON: ") + what + " at offset " + std::to_string(i_));
  }
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail("unexpected character");
    ++i_;
  }
  Json value() {
    const char c = peek();
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '"') return Json{string()};
    if (s_.compare(i_, 4, "true") == 0) return i_ += 4, Json{true};
    if (s_.compare(i_, 5, "false") == 0) return i_ += 5, Json{false};
    if (s_.compare(i_, 4, "null") == 0) return i_ += 4, Json{nullptr};
    return number();
  }
  Json object() {
    expect('{');
    JsonObject o;
    if (peek() == '}') return ++i_, Json{std::move(o)};
    for (;;) {
      if (peek() != '"') fail("expected a key");
      std::string k = string();
      expect(':');
      if (!o.emplace(k, value()).second) fail("duplicate key");
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      return Json{std::move(o)};
    }
  }
  Json array() {
    expect('[');
    JsonArray a;
    if (peek() == ']') return ++i_, Json{std::move(a)};
    for (;;) {
      a.push_back(value());
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect(']');
      return Json{std::move(a)};
    }
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c == '\\') {
        if (i_ >= s_.size()) fail("bad escape");
        c = s_[i_++];
        if (c == 'u') {
          if (i_ + 4 > s_.size()) fail("bad \\u escape");
          out += static_cast<char>(std::stoi(s_.substr(i_, 4), nullptr, 16));
          i_ += 4;
          continue;
        }
        if (std::string("\"\\/bfnrt").find(c) == std::string::npos) fail("bad escape");
      }
      out += c;
    }
    expect('"');
    return out;
  }
  Json number() {
    const std::size_t b = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' ||
                              s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
      ++i_;
    if (b == i_) fail("expected a value");
    return Json{std::stod(s_.substr(b, i_ - b))};
  }
  std::string s_;
  std::size_t i_ = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string temp_path(const char* stem) {
  return (std::filesystem::temp_directory_path() /
          (std::string(stem) + "-" + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) +
           ".json"))
      .string();
}

// --- traced programs -------------------------------------------------------------------

Promise<long> fork_join(int width) {
  std::vector<Promise<long>> kids;
  for (int i = 0; i < width; ++i) kids.push_back(skein::run([i] { return static_cast<long>(i); }));
  long sum = 0;
  for (auto& k : kids) sum += co_await std::move(k);
  co_return sum;
}

Promise<void> ping(skein::Queue<int>& to, skein::Queue<int>& from, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    co_await to.async_put(i);
    auto back = co_await from.async_get();
    REQUIRE(back);
  }
}
Promise<void> pong(skein::Queue<int>& from, skein::Queue<int>& to, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto v = co_await from.async_get();
    REQUIRE(v);
    co_await to.async_put(*v);
  }
}

// --- hooks that keep every event ----------------------------------------------------

struct Seen {
  enum Kind { spawn, start, suspend, resume, finish, wake } kind;
  std::uint64_t task;
  std::uint64_t parent;  // spawn
  std::string name;      // spawn/start; suspend: the kind of wait
  std::string file;      // spawn/start
  const void* object;    // suspend
  const void* coroutine;
};

struct Keeper final : skein::trace::Hooks {
  std::mutex mu;
  std::vector<Seen> events;
  void add(Seen s) noexcept {
    std::lock_guard lk(mu);
    events.push_back(std::move(s));
  }
  static std::string str(const char* s) { return s ? s : ""; }
  void on_spawn(const skein::trace::TaskInfo& t) noexcept override {
    add({Seen::spawn, t.id, t.parent, str(t.name), str(t.where.file_name()), nullptr, nullptr});
  }
  void on_start(const skein::trace::TaskInfo& t) noexcept override {
    add({Seen::start, t.id, 0, str(t.name), str(t.where.file_name()), nullptr, nullptr});
  }
  void on_suspend(std::uint64_t task, const skein::trace::WaitReason& why, const void* co) noexcept override {
    add({Seen::suspend, task, 0, str(why.kind), {}, why.object, co});
  }
  void on_resume(std::uint64_t task, const void* co) noexcept override {
    add({Seen::resume, task, 0, {}, {}, nullptr, co});
  }
  void on_finish(std::uint64_t task) noexcept override { add({Seen::finish, task, 0, {}, {}, nullptr, nullptr}); }
  void on_wake(std::uint64_t notifier, const void* co) noexcept override {
    add({Seen::wake, notifier, 0, {}, {}, nullptr, co});
  }
  std::vector<Seen> snapshot() {
    std::lock_guard lk(mu);
    return events;
  }
};

struct Installed {
  explicit Installed(skein::trace::Hooks* h) { REQUIRE(skein::trace::set_hooks(h) == nullptr); }
  ~Installed() { skein::trace::set_hooks(nullptr); }
};

}  // namespace

TEST_CASE("no hooks: no ids, and tasks run as before") {
  REQUIRE(skein::trace::hooks() == nullptr);
  CHECK(skein::run([] { return skein::trace::current_task(); }).get() == 0);
  CHECK(skein::run(
            skein::named("plain"), [](int x) { return x + 1; }, 1)
            .get() == 2);
}

TEST_CASE("hooks see spawn, start, suspend (with the wait's kind and address), wake, resume and finish in order") {
  Keeper keeper;
  skein::Queue<int> q(1);
  Promise<void> child;
  Promise<int> p;
  {
    Installed on(&keeper);
    p = skein::run(skein::named("consumer"), [&q, &child]() -> Promise<int> {
      child = skein::run(skein::named("child"), [] {});
      auto v = co_await q.async_get();
      co_return *v;
    });
    // Wait (on a condition, not a clock) until the consumer has suspended on q.
    for (;;) {
      bool suspended = false;
      for (const Seen& e : keeper.snapshot()) suspended = suspended || (e.kind == Seen::suspend && e.object == &q);
      if (suspended) break;
      std::this_thread::yield();
    }
    q.put(42);  // from main: a thread outside any task wakes it
    CHECK(p.get() == 42);
    child.get();
    // A task's finish event comes after it has settled (and woken its
    // waiters): wait for both before the hooks go.
    for (;;) {
      int finished = 0;
      for (const Seen& e : keeper.snapshot()) finished += e.kind == Seen::finish;
      if (finished == 2) break;
      std::this_thread::yield();
    }
  }
  const std::vector<Seen> ev = keeper.snapshot();
  std::uint64_t consumer = 0, kid = 0;
  for (const Seen& e : ev)
    if (e.kind == Seen::spawn) (e.name == "consumer" ? consumer : kid) = e.task;
  REQUIRE(consumer != 0);
  REQUIRE(kid != 0);
  CHECK(consumer != kid);

  // The consumer's own events, in the order the hooks saw them.
  auto index = [&](Seen::Kind k, std::uint64_t task, const void* co = nullptr) {
    int found = -1, count = 0;
    for (std::size_t i = 0; i < ev.size(); ++i)
      if (ev[i].kind == k && ev[i].task == task && (!co || ev[i].coroutine == co)) {
        if (found < 0) found = static_cast<int>(i);
        ++count;
      }
    CHECK_MESSAGE(count == 1, "event kind ", static_cast<int>(k), " seen ", count, " times");
    return found;
  };
  const int spawn = index(Seen::spawn, consumer);
  const int start = index(Seen::start, consumer);
  const int suspend = index(Seen::suspend, consumer);
  REQUIRE(suspend >= 0);
  const void* co = ev[static_cast<std::size_t>(suspend)].coroutine;
  REQUIRE(co != nullptr);
  const int wake = index(Seen::wake, 0, co);  // notifier 0: main()
  const int resume = index(Seen::resume, consumer, co);
  const int finish = index(Seen::finish, consumer);
  CHECK(spawn < start);
  CHECK(start < suspend);
  CHECK(suspend < wake);
  CHECK(wake < resume);
  CHECK(resume < finish);

  const Seen& s = ev[static_cast<std::size_t>(spawn)];
  CHECK(s.parent == 0);  // started by main()
  CHECK(s.file.find("trace.test.cpp") != std::string::npos);
  const Seen& w = ev[static_cast<std::size_t>(suspend)];
  CHECK(w.name.find("skein::Queue<int>") != std::string::npos);
  CHECK(w.object == &q);

  // The child was spawned from inside the consumer's run slice.
  const Seen& c = ev[static_cast<std::size_t>(index(Seen::spawn, kid))];
  CHECK(c.parent == consumer);
  CHECK(index(Seen::spawn, kid) > start);
  CHECK(index(Seen::spawn, kid) < suspend);
  CHECK(index(Seen::start, kid) < index(Seen::finish, kid));
}

TEST_CASE("every way to start a task records its site; named() names it; here() records what an arity cannot") {
  Keeper keeper;
  {
    Installed on(&keeper);
    skein::run(
        skein::here(), [](int a, int b, int c, int d) { return a + b + c + d; }, 1, 2, 3, 4)
        .wait();
    skein::run([](int a, int b, int c) { return a + b + c; }, 1, 2, 3).wait();
    skein::TaskGroup g;
    g.spawn(skein::named("grouped"), [] {});
    g.spawn([] {});
    g.wait();
    skein::Context ctx;
    ctx.spawn([] {});
    ctx.wait();
    skein::EventLoop loop;
    auto on_loop = loop.spawn([] { return 1; });
    auto named_on_loop = loop.spawn(
        skein::named("looped"), [](int x) { return x; }, 2);
    loop.run();
    CHECK(on_loop.get() + named_on_loop.get() == 3);
  }
  int with_site = 0, named = 0;
  for (const Seen& e : keeper.snapshot()) {
    if (e.kind != Seen::spawn) continue;
    if (e.file.find("trace.test.cpp") != std::string::npos) ++with_site;
    if (e.name == "grouped" || e.name == "looped") ++named;
  }
  CHECK(with_site == 7);
  CHECK(named == 2);
}

TEST_CASE("the recorder writes valid Chrome trace-event JSON: slices, flows, thread names") {
  const std::string path = temp_path("skein-trace-test");
  {
    skein::trace::TraceSession session(path);
    CHECK(skein::trace::recording());
    CHECK(skein::run(fork_join, 16).get() == 120);
    skein::Queue<int> a(0), b(0);  // unbounded (Queue(0)); ping and pong take turns through them
    auto p1 = skein::run(skein::named("ping"), ping, std::ref(a), std::ref(b), 20);
    auto p2 = skein::run(skein::named("pong"), pong, std::ref(a), std::ref(b), 20);
    p1.get();
    p2.get();
  }
  CHECK_FALSE(skein::trace::recording());
  const std::string text = read_file(path);
  REQUIRE(!text.empty());
  Json doc = JsonReader(text).parse();
  REQUIRE(doc.is_object());
  REQUIRE(doc.object().count("traceEvents") == 1);
  const JsonArray& events = doc.object().at("traceEvents").array();
  REQUIRE(!events.empty());

  std::map<double, std::string> starts, finishes;  // flow id -> cat
  std::set<double> named_tids, slice_tids;
  int slices = 0, from_here = 0, pings = 0, pongs = 0;
  for (const Json& e : events) {
    REQUIRE(e.is_object());
    const JsonObject& o = e.object();
    for (const char* key : {"ph", "ts", "pid", "tid"}) CHECK_MESSAGE(o.count(key) == 1, "an event without ", key);
    const std::string& ph = o.at("ph").str();
    if (ph == "X") {
      ++slices;
      CHECK(o.at("dur").num() >= 0);
      CHECK(o.at("ts").num() >= 0);
      slice_tids.insert(o.at("tid").num());
      const std::string& name = o.at("name").str();
      if (name.find("trace.test.cpp") != std::string::npos) ++from_here;
      if (name == "ping") ++pings;
      if (name == "pong") ++pongs;
      // A name, or a start site (tasks another test left running may have
      // theirs); or a thread's blocking wait (main's get()).
      if (o.at("cat").str() == "block")
        CHECK(name.rfind("blocked: ", 0) == 0);
      else
        CHECK((name.find(".cpp:") != std::string::npos || name == "ping" || name == "pong" ||
               name.rfind("task ", 0) == 0));
    } else if (ph == "s") {
      CHECK(starts.emplace(o.at("id").num(), o.at("cat").str()).second);
    } else if (ph == "f") {
      CHECK(o.at("bp").str() == "e");
      CHECK(finishes.emplace(o.at("id").num(), o.at("cat").str()).second);
    } else if (ph == "M") {
      if (o.at("name").str() == "thread_name") named_tids.insert(o.at("tid").num());
    } else {
      FAIL("unexpected phase ", ph);
    }
  }
  CHECK(slices > 0);
  CHECK(from_here >= 17);  // fork_join's task and its 16 children at least
  CHECK(pings >= 1);
  CHECK(pongs >= 1);
  for (double tid : slice_tids) CHECK_MESSAGE(named_tids.count(tid) == 1, "no thread_name for tid ", tid);
  CHECK(starts.size() == finishes.size());
  int spawn_flows = 0, wake_flows = 0;
  for (const auto& fin : finishes) {
    const std::string& cat = fin.second;
    auto it = starts.find(fin.first);
    REQUIRE_MESSAGE(it != starts.end(), "a flow end without its start: ", fin.first);
    CHECK(it->second == cat);
    spawn_flows += cat == "spawn";
    wake_flows += cat == "wake";
  }
  CHECK(spawn_flows >= 16);  // from fork_join to each child
  CHECK(wake_flows >= 1);    // ping and pong wake each other
  std::filesystem::remove(path);
}

TEST_CASE("start refuses while recording or while other hooks are installed") {
  const std::string path = temp_path("skein-trace-refuse");
  {
    Keeper keeper;
    Installed on(&keeper);
    CHECK_THROWS_AS(skein::trace::start(path), skein::UsageError);
    CHECK_FALSE(skein::trace::recording());
  }
  CHECK(skein::trace::start(path));
  CHECK_FALSE(skein::trace::start(path));
  CHECK(skein::trace::stop() == path);
  CHECK(skein::trace::stop().empty());
  std::filesystem::remove(path);
}

TEST_CASE("a thread's blocking wait is a slice of its own, named by the wait") {
  const std::string path = temp_path("block");
  skein::Queue<int> q(1);
  std::atomic<bool> blocked{false};
  REQUIRE(skein::trace::start(path));
  std::thread t([&] {
    // Released only once it is asleep in Queue::get (the dump shows it).
    while (!blocked.load()) {
      for (auto& th : skein::dump_threads())
        if (th.state == "blocked" && th.object == &q) blocked.store(true);
      std::this_thread::yield();
    }
    q.put(1);
  });
  CHECK(*q.get() == 1);
  t.join();
  CHECK(skein::trace::stop() == path);
  const std::string text = read_file(path);
  std::remove(path.c_str());
  CHECK(text.find(R"("cat":"block","name":"blocked: Queue::get")") != std::string::npos);
}

// ---- The task tracker: skein::dump_tasks --------------------------------------------

namespace {
/// Tracking on for the test's duration.
struct Tracking {
  Tracking() { skein::trace::track_tasks(true); }
  ~Tracking() { skein::trace::track_tasks(false); }
  Tracking(const Tracking&) = delete;
  Tracking& operator=(const Tracking&) = delete;
};
std::optional<skein::TaskDump> task_named(const char* name) {
  for (auto& t : skein::dump_tasks())
    if (t.name == name) return t;
  return std::nullopt;
}
}  // namespace

TEST_CASE("dump_tasks: each live task's name or site, state, wait and Context chain") {
  Tracking tracking;
  skein::Queue<int> q(1), q2(1);
  skein::Context outer;
  skein::Context inner = outer.child();
  auto waiting = inner.run(skein::named("waiting"), [&]() -> Promise<int> { co_return *co_await q.async_get(); });
  auto blocked = skein::run(skein::named("blocked"), [&] { return *q2.get(); });
  auto unnamed = skein::run([&]() -> Promise<int> { co_return *co_await q.async_get(); });
  REQUIRE(eventually([&] {
    auto w = task_named("waiting");
    auto b = task_named("blocked");
    return w && w->state == "waiting" && b && b->state == "blocked";
  }));
  auto w = *task_named("waiting");
  CHECK(w.object == &q);
  CHECK(w.waits_on.find("Queue") != std::string::npos);
  CHECK(w.where.find("trace.test.cpp:") == 0);
  REQUIRE(w.contexts.size() >= 2);  // inner, then outer
  CHECK(w.contexts[0] != w.contexts[1]);
  CHECK(w.text().find("\"waiting\"") != std::string::npos);
  auto b = *task_named("blocked");
  CHECK(b.waits_on == "Queue::get");
  CHECK(b.object == &q2);
  CHECK(b.thread_id != 0);
  CHECK(b.contexts.empty());
  bool unnamed_seen = false;
  for (auto& t : skein::dump_tasks())
    if (t.name.empty() && t.where.find("trace.test.cpp:") == 0 && t.object == &q) unnamed_seen = true;
  CHECK(unnamed_seen);
  CHECK(skein::dump_text().find("\"blocked\"") != std::string::npos);
  const skein::Dump d = skein::dump();
  CHECK(d.tasks.size() >= 3);
  CHECK(d.live_tasks >= 3);
  CHECK(d.text().find("task ") != std::string::npos);
  q.put(1);
  q.put(2);
  q2.put(3);
  CHECK(waiting.get() + unnamed.get() + blocked.get() == 6);
  REQUIRE(eventually([&] { return !task_named("waiting") && !task_named("blocked"); }));  // gone at their end
}

TEST_CASE("tasks are tracked while the recorder records, and both see every task") {
  Tracking tracking;
  const std::string path = temp_path("tracked");
  {
    skein::trace::TraceSession session(path);
    skein::Queue<int> q(1);
    auto t = skein::run(skein::named("tracked"), [&]() -> Promise<int> { co_return *co_await q.async_get(); });
    REQUIRE(eventually([&] { return task_named("tracked").has_value(); }));
    q.put(5);
    CHECK(t.get() == 5);
  }
  const std::string text = read_file(path);
  std::remove(path.c_str());
  CHECK(text.find("\"name\":\"tracked\"") != std::string::npos);
  CHECK(skein::trace::hooks() == nullptr);  // the recorder took itself out; tracking stays
  CHECK(skein::trace::tracking_tasks());
}
