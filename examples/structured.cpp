// Structured concurrency in C++: task groups, all-settled, context values,
// cancellation causes, after_cancel, permit guards. Each section prints a
// [heading]; the README shows each section's code next to its output (ctest
// checks the output, which is deterministic).
#include <skein/skein.hpp>

#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

static const skein::ContextKey<std::string> kRequestId{"request id"};

int main() {
  std::printf("[task_group]\n");
  {
    // [readme:task_group]
    // A pipeline stage: four workers put into `out`; it is closed only once
    // every worker has finished, whatever their order.
    skein::Queue<int> out(100);
    {
      skein::TaskGroup g;
      for (int w = 0; w < 4; ++w)
        g.spawn([&out, w] {
          for (int i = 0; i < 5; ++i) out.put(w * 100 + i);
        });
      g.wait();  // all four are done (or the first failure is rethrown here)
      out.close();
    }
    int n = 0;
    while (out.get()) ++n;
    std::printf("items: %d\n", n);

    // The first failure cancels the others (their waits throw Cancelled,
    // carrying it as the cause); wait() rethrows it.
    skein::TaskGroup g;
    g.spawn([] { skein::sleep_for(1h); });  // cancelled at once by the failure below
    g.spawn([] { throw std::runtime_error("disk full"); });
    try {
      g.wait();
    } catch (const std::exception& e) {
      std::printf("wait: %s (errors: %zu)\n", e.what(), g.errors().size());
    }
    // [/readme:task_group]
  }

  std::printf("[locals]\n");
  {
    // [readme:locals]
    // Tasks may use the enclosing function's locals: however the scope is
    // left, the group cancels what is left and waits for it.
    auto job = [](skein::Context parent) {
      std::vector<int> seen(3, 0);  // a local the tasks write
      skein::TaskGroup g(parent);
      for (int i = 0; i < 3; ++i)
        g.spawn([&seen, i] {
          skein::sleep_for(1h);  // cancelled below
          seen[static_cast<std::size_t>(i)] = 1;
        });
      throw std::runtime_error("the job gave up");  // ~TaskGroup: cancel, then wait
    };
    skein::Context ctx;
    try {
      job(ctx);
    } catch (const std::exception& e) {
      std::printf("%s; tasks left: %zu\n", e.what(), ctx.tasks());
    }
    // [/readme:locals]
  }

  std::printf("[values]\n");
  {
    // [readme:values]
    // static const skein::ContextKey<std::string> kRequestId{"request id"};  (a global)
    auto request = skein::Context().with_value(kRequestId, "r-42");
    auto p = request.run([] {
      // Every task started in the context (and the tasks they start) sees it.
      auto inner = skein::run([] { return *skein::this_task::value(kRequestId); });
      return "handled " + inner.get();
    });
    std::printf("%s\n", p.get().c_str());

    // Cancel with a cause: the waits inside throw Cancelled carrying it.
    skein::Queue<int> started(1);
    auto blocked = request.run([&started] {
      started.put(1);
      skein::sleep_for(1h);
    });
    started.get();
    request.cancel(std::make_exception_ptr(std::runtime_error("client went away")));
    try {
      blocked.get();
    } catch (const skein::Cancelled& e) {
      std::printf("%s\n", e.what());
    }
    // Work that must finish anyway keeps the values, not the cancellation.
    auto audit = request.without_cancel();
    std::printf("audit: cancelled %d, request %s\n", audit.cancelled(), audit.value(kRequestId)->c_str());
    // [/readme:values]
  }

  std::printf("[after_cancel]\n");
  {
    // [readme:after_cancel]
    skein::Context ctx;
    skein::Queue<std::string> log(10);
    auto first = skein::after_cancel(ctx, [&log] { log.put("cancelled: release the lease"); });
    auto second = skein::after_cancel(ctx, [&log] { log.put("never runs"); });
    std::printf("stopped second: %d\n", second.stop());
    ctx.cancel();  // starts `first` as a task of its own
    std::printf("%s\n", log.get()->c_str());
    std::printf("stop after it ran: %d\n", first.stop());
    // [/readme:after_cancel]
  }

  std::printf("[settled]\n");
  {
    // [readme:settled]
    auto [a, b, c] = skein::when_all_settled(skein::run([] { return 1; }),
                                             skein::run([]() -> int { throw std::runtime_error("timeout"); }),
                                             skein::run([] { return 3; }))
                         .get();
    for (const auto* s : {&a, &b, &c}) {
      if (s->fulfilled()) {
        std::printf("value %d\n", s->value());
      } else {
        try {
          std::rethrow_exception(s->error());
        } catch (const std::exception& e) {
          std::printf("error %s\n", e.what());
        }
      }
    }
    // [/readme:settled]
  }

  std::printf("[permit]\n");
  {
    // [readme:permit]
    skein::Semaphore slots(2);
    std::atomic<int> running{0}, most{0};
    skein::TaskGroup g;
    for (int i = 0; i < 10; ++i)
      g.spawn([&] {
        skein::Permit permit(slots);  // released however the task ends
        const int now = ++running;
        for (int seen = most; now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        skein::sleep_for(1ms);
        --running;
      });
    g.wait();
    std::printf("never more than 2 at once: %s; %td permits free\n", most <= 2 ? "yes" : "no", slots.available());
    // [/readme:permit]
  }
}
