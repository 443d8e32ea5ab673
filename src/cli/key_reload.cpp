#include "cli/key_reload.hpp"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>

#include "cli/command.hpp"
#include "nomq/config.hpp"

namespace nomq::cli {
namespace {

std::atomic<bool> g_hup{false};
extern "C" void on_hup(int) { g_hup.store(true); }

void say(const std::string& command, const std::string& line) {
  std::fprintf(stderr, "nomq %s: SIGHUP: %s\n", command.c_str(), line.c_str());
  std::fflush(stderr);
}

}  // namespace

void install_sighup_flag() {
  struct sigaction sa{};
  sa.sa_handler = on_hup;
  sa.sa_flags = SA_RESTART;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGHUP, &sa, nullptr);
}

bool take_sighup() { return g_hup.exchange(false); }

bool reload_keys(Node& node, const std::string& command, const std::string& path,
                 bool allow_insecure_permissions) {
  const std::uint32_t epoch = node.key_epoch();
  const std::string keeping = "; keeping key epoch " + std::to_string(epoch);
  try {
    auto loaded = load_config(path, LoadOptions{.allow_insecure_permissions = allow_insecure_permissions});
    if (!loaded) {
      say(command, error_text(loaded.error()) + keeping);
      return false;
    }
    const NodeConfig& c = loaded->config;
    // Channel keys (docs/config.md "channel_keys"): the file's set becomes the node's, with
    // nothing to restart; a pattern the file no longer names is removed.
    const std::vector<std::string> held = node.channel_key_patterns();
    std::string channels;
    bool channels_ok = true;
    for (const ChannelKeySpec& k : c.channel_keys) {
      if (auto r = node.add_channel_key(k); !r) {
        say(command, "channel key '" + k.pattern + "': " + error_text(r.error()));
        channels_ok = false;
        continue;
      }
      channels += (channels.empty() ? "" : ", ") + k.pattern;
    }
    std::string removed;
    for (const std::string& p : held) {
      const bool kept = std::any_of(c.channel_keys.begin(), c.channel_keys.end(),
                                    [&](const ChannelKeySpec& k) { return k.pattern == p; });
      if (kept) continue;
      if (node.remove_channel_key(p)) removed += (removed.empty() ? "" : ", ") + p;
    }
    if (!channels.empty() || !removed.empty()) {
      say(command, "channel keys from " + path + ": " + (channels.empty() ? "none" : channels) +
                       (removed.empty() ? "" : "; removed " + removed));
    }
    const bool channel_change = !c.channel_keys.empty() || !removed.empty();
    if (channel_change && (c.key_form != KeyForm::master || c.key_epoch == epoch)) {
      return channels_ok;  // nothing to rotate: the group keys stay as they are
    }
    if (c.key_form != KeyForm::master) {
      say(command, path + ": raw encryption_key/hmac_key cannot be rotated (no key epochs)" + keeping);
      return false;
    }
    if (c.key_epoch == epoch) {
      say(command, path + " still names key epoch " + std::to_string(epoch) +
                       " (run nomq keygen --rotate -o " + path + " first)" + keeping);
      return false;
    }
    const auto overlap = std::chrono::seconds{c.key_overlap_s};
    if (auto r = node.rotate_keys(c.master_secret, c.key_epoch, overlap); !r) {
      say(command, "cannot rotate to key epoch " + std::to_string(c.key_epoch) + ": " +
                       error_text(r.error()) + keeping);
      return false;
    }
    say(command, "key epoch " + std::to_string(c.key_epoch) + " from " + path +
                     " accepted; sending switches to it in " + std::to_string(c.key_overlap_s / 2) +
                     " s, epoch " + std::to_string(epoch) + " refused after " +
                     std::to_string(c.key_overlap_s) + " s");
    return true;
  } catch (const std::exception& e) {  // std::bad_alloc: keep running on the old keys
    say(command, std::string{e.what()} + keeping);
    return false;
  }
}

}  // namespace nomq::cli
