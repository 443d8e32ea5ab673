// The engine's memory: one block, carved up once at construction (docs/engine.md §2).
//
// Engine::create() takes the block from the caller (a buffer, or a std::pmr::memory_resource
// asked once for Engine::state_bytes_for(config) bytes) and hands it to the components through
// an Arena: a bump allocator that never frees. Every table is a FixedArray over a piece of it.
// Each piece is rounded up to kArenaAlign, so the total is a plain sum of per-table sizes,
// independent of the order the components take their pieces in: each table states its size
// with a static bytes_for(...) that mirrors its constructor, and Engine::state_bytes_for() adds
// them up. EngineMemory.* checks that the sum equals what construction used, to the byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace nomq::detail {

inline constexpr std::size_t kArenaAlign = alignof(std::max_align_t);

constexpr std::size_t arena_round(std::size_t n) noexcept {
  return (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
}

// The arena bytes of an array of n T.
template <class T>
constexpr std::size_t arena_bytes(std::size_t n) noexcept {
  return arena_round(n * sizeof(T));
}

// A fixed-size array in arena memory. Elements are trivially destructible (the arena never
// runs destructors); a default-constructed FixedArray is empty.
template <class T>
class FixedArray {
  static_assert(std::is_trivially_destructible_v<T>, "arena arrays hold trivial types only");

 public:
  FixedArray() noexcept = default;
  FixedArray(T* data, std::size_t size) noexcept : data_(data), size_(size) {}

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  void fill(const T& v) noexcept {
    for (std::size_t i = 0; i < size_; ++i) data_[i] = v;
  }
  // What the array occupies in the arena.
  std::size_t state_bytes() const noexcept { return arena_bytes<T>(size_); }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

class Arena {
 public:
  // `base` must be aligned to kArenaAlign.
  Arena(void* base, std::size_t size) noexcept : base_(static_cast<std::byte*>(base)), size_(size) {}

  // n value-initialised T. The caller sized the block with the tables' bytes_for(), so running
  // out is a bug in a bytes_for(): it stops the program instead of overrunning the block.
  template <class T>
  FixedArray<T> make(std::size_t n) noexcept {
    void* raw = take(arena_bytes<T>(n), std::is_trivially_default_constructible_v<T>);
    T* p = static_cast<T*>(raw);
    if constexpr (!std::is_trivially_default_constructible_v<T>) {
      for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(p + i)) T{};
    } else {
      // take() zeroed the bytes: T{} of a trivially default-constructible T is all zero.
      for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(p + i)) T;
    }
    return FixedArray<T>{p, n};
  }
  template <class T>
  FixedArray<T> make(std::size_t n, const T& init) noexcept {
    FixedArray<T> a = make<T>(n);
    a.fill(init);
    return a;
  }

  // The next `bytes` (a multiple of kArenaAlign) of the block, zeroed when `zero`. Out of line
  // (core/arena.cpp): every table's construction calls it.
  void* take(std::size_t bytes, bool zero) noexcept;

  std::size_t used() const noexcept { return used_; }
  std::size_t size() const noexcept { return size_; }

 private:
  std::byte* base_;
  std::size_t size_;
  std::size_t used_ = 0;
};

}  // namespace nomq::detail
