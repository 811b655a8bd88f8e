// Why is it stuck? skein's deadlock detector in a small program: a producer
// fails before its first put, and main waits on the queue it would have fed.
// Go stops such a program with "all goroutines are asleep - deadlock!";
// skein prints the same message and every thread's wait to stderr, and fails
// main's wait with skein::Deadlock. Each section prints a [heading]; ctest
// checks the output on stdout (the report on stderr names thread ids and
// addresses, which vary).
#include <skein/skein.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

int main() {
  std::printf("[deadlock]\n");
  {
    // [readme:deadlock]
    skein::Queue<int> jobs(10);
    auto producer = skein::run([&] {
      throw std::runtime_error("the producer failed");
      jobs.put(1);
    });
    try {
      auto job = jobs.get();  // nobody will ever put: every thread waits
      std::printf("job %d\n", *job);
    } catch (const skein::Deadlock& e) {
      std::printf("main: %.48s...\n", e.what());
    }
    try {
      producer.get();
    } catch (const std::exception& e) {
      std::printf("producer: %s\n", e.what());
    }
    // [/readme:deadlock]
  }
  std::printf("[handler]\n");
  {
    // [readme:handler]
    // A handler sees the report (and may release the wait itself).
    skein::Queue<int> answers(1);
    skein::DeadlockOptions o;
    o.print = false;  // the handler reports instead
    o.handler = [&](const skein::DeadlockReport& r) {
      for (auto& t : r.threads)
        if (t.state == "blocked")
          std::printf("blocked: %s (pool thread: %s)\n", t.waits_on.c_str(), t.pool_thread ? "yes" : "no");
      (void)answers.try_put(42);  // released: nothing more to do
      return skein::DeadlockAction::ignore;
    };
    skein::set_deadlock_options(o);
    std::printf("answer: %d\n", *answers.get());
    skein::set_deadlock_options({});  // the defaults again
    // [/readme:handler]
  }
  std::printf("[dump]\n");
  {
    // [readme:dump]
    // What is every thread doing right now? (dump_on_signal(SIGQUIT) prints
    // this on Ctrl-\, as Go does.)
    skein::Queue<int> q(1);
    std::thread waiter([&] { (void)q.get(); });
    std::vector<skein::ThreadDump> blocked;
    while (blocked.empty()) {
      for (auto& t : skein::dump_threads())
        if (t.state == "blocked" && t.object == &q) blocked.push_back(t);
      std::this_thread::yield();
    }
    std::printf("the waiter: %s in %s\n", blocked[0].state.c_str(), blocked[0].waits_on.c_str());
    q.put(1);
    waiter.join();
    // [/readme:dump]
  }
}
