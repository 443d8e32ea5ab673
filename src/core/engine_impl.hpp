// Engine::Impl: the components of src/core/ in one object, in construction order. Shared by
// the façade (engine.cpp: dispatch) and its construction (engine_create.cpp: config checks,
// sizes, the state block).
#pragma once

#include "nomq/engine.hpp"

#include <cstdint>
#include <new>

#include "core/arena.hpp"
#include "core/auth_failures.hpp"
#include "core/counters.hpp"
#include "core/discovery.hpp"
#include "core/engine_errors.hpp"
#include "core/events.hpp"
#include "core/message_pool.hpp"
#include "core/outbox.hpp"
#include "core/publisher.hpp"
#include "core/reachability.hpp"
#include "core/receiver.hpp"
#include "core/retained_replay.hpp"
#include "core/session.hpp"
#include "core/sizing.hpp"
#include "core/solicitation.hpp"
#include "core/subscriptions.hpp"
#include "core/transmitter.hpp"

namespace nomq {

// Internal header (src/core only): the components are nomq::detail types.
using namespace detail;

// Members in construction order; a component may name one declared later (it only keeps the
// reference until the engine is built). Only Session's constructor draws random numbers.
// Every table is taken from `arena`, which covers the block after the Impl itself.
struct Engine::Impl {
  Impl(const EngineConfig& c, Crypto& cr, Rng& r, Instant now, void* tables, std::size_t size)
      : cfg(c),
        crypto(cr),
        keys(cr, c.key_epoch, c.wire == WireVersion::v2),
        rng(r),
        arena(tables, size),
        last_now(now),
        pool(arena, pool_slots(cfg.limits), pool_bytes(cfg.limits)),
        outbox(arena, at_least_one(cfg.limits.max_outbox), cfg.limits.max_queued_messages, cfg.wire,
               pool, subs, counters),
        subs(arena, cfg.limits.max_channels, cfg.limits.max_channel_name, cfg.wire, keys, outbox),
        session(ctx, subs, now),
        events(arena, at_least_one(cfg.limits.max_pending), at_least_one(cfg.limits.max_peers),
               counters, cfg.limits.max_peer_events),
        publisher(ctx, {session, pool, outbox, discovery, retained, solicitation, events}),
        retained(ctx, {pool, outbox, subs, publisher, reach}),
        discovery(ctx, {events, publisher, solicitation, retained}),
        solicitation(ctx, {outbox, subs, publisher, reach}, now),
        receiver(ctx, {session, subs, outbox, retained, events, reach}),
        transmitter(ctx, {session, outbox, subs, pool, publisher, reach}),
        auth_failures(ctx, events, outbox),
        reach(ctx, outbox) {}

  bool v2() const noexcept { return cfg.wire == WireVersion::v2; }
  void begin_call(Instant now) noexcept {
    if (now > last_now) last_now = now;
    publisher.begin_call(last_now);
    if (keys.switch_pending() || keys.overlap_open()) run_key_rotation(last_now);
  }
  void on_v2(const wire::Packet& p, const Endpoint& from, std::size_t bytes, Instant now,
             WallTime wall) noexcept;
  void on_echo(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;
  void on_v1(const wire::Packet& p, const Endpoint& from, Instant now) noexcept;

  // The tables by name, in the order of StateReport (state_report_for() computes the same
  // figures from a config alone).
  static StateReport report_for(const EngineConfig& c) noexcept;

  // Key rotation (docs/engine.md §19): switches sending to the next epoch once it is due (a
  // new session; publishes already sent keep the old one while its epoch is held); retires
  // the previous epoch at the end of the overlap.
  void run_key_rotation(Instant now) noexcept;
  std::optional<Instant> key_rotation_deadline() const noexcept;

  EngineConfig cfg;
  Crypto& crypto;  // the key set create() was given (the ring's first current set)
  KeyRing keys;
  Rng& rng;
  Counters counters;
  Arena arena;
  Context ctx{cfg, keys, rng, counters, arena, keys};
  Instant last_now;
  bool closed = false;
  MessagePool pool;
  Outbox outbox;
  Subscriptions subs;
  Session session;
  Events events;
  Publisher publisher;
  RetainedReplay retained;
  Discovery discovery;
  Solicitation solicitation;
  Receiver receiver;
  Transmitter transmitter;
  AuthFailures auth_failures;  // a fixed table: counted in the fixed part
  Reachability reach;          // anti-amplification (docs/engine.md §17)
};

}  // namespace nomq
