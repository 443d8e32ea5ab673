// `nomq`: the command-line tool. Subcommands live in cmd_*.cpp and register themselves.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include "cli/command.hpp"

namespace nomq::cli {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace nomq::cli

int main(int argc, char** argv) {
  using namespace nomq::cli;
  CLI::App app{"nomq: secure brokerless publish/subscribe over UDP"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string{"nomq 0.1.0"});
  auto& commands = registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  std::function<int()> run;
  for (auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.description);
    auto runner = c.setup(*sub);
    sub->callback([&run, runner] { run = runner; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // One specific line, then where to look (mosquitto_pub style).
    std::string where = "nomq";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    std::fprintf(stderr, "Error: %s\nUse '%s --help' to see usage.\n", e.what(), where.c_str());
    return kExitUsage;
  }
  return run ? run() : kExitUsage;
}
