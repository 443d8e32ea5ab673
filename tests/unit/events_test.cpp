// The control event queue (core/events.hpp): reports and peer events come out in the order they
// went in; peer events never take a report's room; when the queue is full, a report displaces
// the oldest peer event (counted inbox_full). Runs on the host and on the Cortex-M4 (mcu_unit).
#include "core/events.hpp"
#include "unit/arena_support.hpp"

#include <gtest/gtest.h>

namespace nomq::detail {
namespace {

Endpoint ep(std::uint8_t last) { return Endpoint::v4(10, 0, 0, last, 4700); }

TEST(Events, ReportsAndPeerEventsKeepTheirOrder) {
  Counters counters;
  Events e(test::test_arena(), 4, 2, counters);
  e.push_peer(PeerEvent::Kind::joined, ep(1), 11);
  e.push_report(3);
  e.push_peer(PeerEvent::Kind::left, ep(2), 22, 0, 0);
  e.push_peer(PeerEvent::Kind::clock_skew, ep(3), 33, -400000000000, 0);
  e.push_report(0);
  e.push_peer(PeerEvent::Kind::auth_failed, ep(4), 0, 0, 5000000000ull);
  ControlEvent out;
  ASSERT_TRUE(e.pop(out));
  EXPECT_FALSE(out.is_report);
  EXPECT_EQ(out.peer.kind, PeerEvent::Kind::joined);
  EXPECT_EQ(out.peer.session_id, 11u);
  EXPECT_TRUE(out.peer.endpoint == ep(1));
  ASSERT_TRUE(e.pop(out));
  EXPECT_TRUE(out.is_report);
  EXPECT_EQ(out.pending, 3u);
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.peer.kind, PeerEvent::Kind::left);
  EXPECT_TRUE(out.peer.endpoint == ep(2));
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.peer.kind, PeerEvent::Kind::clock_skew);
  EXPECT_EQ(out.peer.clock_offset_s, -400000000000);
  ASSERT_TRUE(e.pop(out));
  EXPECT_TRUE(out.is_report);
  EXPECT_EQ(out.pending, 0u);
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.peer.kind, PeerEvent::Kind::auth_failed);
  EXPECT_EQ(out.peer.failures, 5000000000ull);
  EXPECT_FALSE(e.pop(out));
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 0u);
}

TEST(Events, PeerEventsNeverTakeAReportsRoom) {
  Counters counters;
  const std::size_t reports = 3, peers = 1;
  Events e(test::test_arena(), reports, peers, counters);
  const std::size_t room = Events::peer_slots(peers);
  for (std::size_t i = 0; i < room + 5; ++i)
    e.push_peer(PeerEvent::Kind::joined, ep(static_cast<std::uint8_t>(i)), static_cast<std::uint32_t>(i));
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 5u);
  for (std::uint32_t r = 0; r < reports; ++r) e.push_report(r);  // every report still fits
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 5u);
  ControlEvent out;
  std::size_t seen_peers = 0, seen_reports = 0;
  while (e.pop(out)) {
    if (out.is_report) {
      EXPECT_EQ(out.pending, seen_reports);
      ++seen_reports;
    } else {
      EXPECT_EQ(out.peer.session_id, seen_peers) << "peer events in order, the first ones kept";
      ++seen_peers;
    }
  }
  EXPECT_EQ(seen_peers, room);
  EXPECT_EQ(seen_reports, reports);
}

TEST(Events, AReportDisplacesTheOldestPeerEventWhenFull) {
  Counters counters;
  Events e(test::test_arena(), 1, 1, counters);
  const std::size_t size = Events::ring_size(1, 1);
  // Fill with peer events up to their share, then one report fills the ring.
  for (std::size_t i = 0; i + 1 < size; ++i)
    e.push_peer(PeerEvent::Kind::joined, ep(1), static_cast<std::uint32_t>(100 + i));
  e.push_report(0);
  ControlEvent out;
  ASSERT_TRUE(e.pop(out));  // the oldest peer event leaves: one free entry
  EXPECT_EQ(out.peer.session_id, 100u);
  e.push_peer(PeerEvent::Kind::joined, ep(1), 999);  // fits: the ring is full again
  e.push_peer(PeerEvent::Kind::joined, ep(1), 998);  // refused: peer events have their share
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 1u);
  e.push_report(0);  // full: displaces the oldest waiting peer event (101)
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 2u);
  ASSERT_TRUE(e.pop(out));
  EXPECT_FALSE(out.is_report);
  EXPECT_EQ(out.peer.session_id, 102u);
  std::size_t reports = 0, peers = 0;
  std::uint32_t last_session = 0;
  while (e.pop(out)) {
    if (out.is_report) {
      ++reports;
    } else {
      ++peers;
      last_session = out.peer.session_id;
    }
  }
  EXPECT_EQ(reports, 2u);
  EXPECT_EQ(peers, 8u);  // 103..109 and 999
  EXPECT_EQ(last_session, 999u);
}

// EngineLimits::max_peer_events sets the peer events' room (the small device profile: 8)
// instead of 2 × max_peers + 8; every value survives the compact storage (a clock offset below
// zero, a failure count above 32 bits).
TEST(Events, ConfiguredPeerEventRoom) {
  Counters counters;
  Events e(test::test_arena(), 2, 16, counters, 3);
  EXPECT_EQ(Events::ring_size(2, 16, 3), 5u);
  EXPECT_EQ(e.state_bytes(), Events::bytes_for(2, 16, 3));
  e.push_peer(PeerEvent::Kind::clock_skew, ep(1), 1, -400000000000);
  e.push_peer(PeerEvent::Kind::auth_failed, ep(2), 0, 0, 5000000000ull);
  e.push_peer(PeerEvent::Kind::left, ep(3), 3);
  e.push_peer(PeerEvent::Kind::joined, ep(4), 4);  // no room: dropped
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 1u);
  e.push_report(0);
  e.push_report(1);  // reports keep their own room
  EXPECT_EQ(counters.stats().dropped_by(Errc::inbox_full), 1u);
  ControlEvent out;
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.peer.kind, PeerEvent::Kind::clock_skew);
  EXPECT_EQ(out.peer.clock_offset_s, -400000000000);
  EXPECT_EQ(out.peer.failures, 0u);
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.peer.kind, PeerEvent::Kind::auth_failed);
  EXPECT_EQ(out.peer.failures, 5000000000ull);
  EXPECT_EQ(out.peer.clock_offset_s, 0);
  EXPECT_EQ(out.peer.endpoint, ep(2));
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.peer.session_id, 3u);
  ASSERT_TRUE(e.pop(out));
  EXPECT_TRUE(out.is_report);
  EXPECT_EQ(out.pending, 0u);
  ASSERT_TRUE(e.pop(out));
  EXPECT_EQ(out.pending, 1u);
  EXPECT_FALSE(e.pop(out));
}

}  // namespace
}  // namespace nomq::detail
