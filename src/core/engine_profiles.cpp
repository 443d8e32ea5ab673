// The device profiles of EngineConfig (docs/embedded.md: their state per table, what each
// limit costs). Sized with Engine::state_report_for(); tests/sim/profiles_test.cpp runs both
// under loss and checks the budgets.
#include "nomq/engine.hpp"

namespace nomq {

EngineConfig EngineConfig::seed_profile() noexcept {
  EngineConfig c;
  EngineLimits& l = c.limits;
  l.max_pending = 50;
  l.max_channels = 20;
  l.max_message_size = 1024;
  l.max_retained_per_channel = 5;
  l.max_retained_channels = 8;
  l.max_peers = 8;
  l.max_peer_subscriptions = 64;
  l.max_peer_filters = 4;
  l.max_senders = 16;
  l.max_senders_per_endpoint = 4;
  l.max_endpoints = 8;
  l.max_inbound_qos = 64;
  l.max_inbox = 32;
  l.max_outbox = 64;
  l.max_queued_messages = 16;
  l.message_pool_bytes = 20 * 1024;
  l.inbox_bytes = 8 * 1024;
  l.max_channel_name = 64;
  l.max_recipients = 6;
  c.replay_window = 1024;
  c.v1_nonce_cache = 128;
  return c;
}

EngineConfig EngineConfig::small_profile() noexcept {
  EngineConfig c;
  EngineLimits& l = c.limits;
  l.max_pending = 8;
  l.max_channels = 8;
  l.max_message_size = 256;
  l.max_retained_per_channel = 2;
  l.max_retained_channels = 4;
  // A device in a network of up to 8 other nodes: peers, senders and peer subscriptions at 8 /
  // 8 / 16 (not 16 / 16 / 32) cut about 4 KB (docs/embedded.md: what this profile gives up).
  l.max_peers = 8;
  l.max_peer_subscriptions = 16;
  l.max_peer_filters = 2;
  l.max_senders = 8;
  l.max_senders_per_endpoint = 4;
  l.max_endpoints = 8;
  l.max_inbound_qos = 16;
  l.max_qos2_per_session = 8;
  l.max_peer_events = 8;  // control events waiting for poll_event(), besides the reports
  l.max_inbox = 4;
  l.max_outbox = 8;
  l.max_queued_messages = 4;
  l.message_pool_bytes = 1792;
  l.inbox_bytes = 768;
  l.max_channel_name = 32;
  l.max_recipients = 4;
  c.replay_window = 256;
  c.v1_nonce_cache = 16;
  return c;
}

}  // namespace nomq
