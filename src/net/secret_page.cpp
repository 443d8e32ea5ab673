#include "net/secret_page.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <new>

#include "nomq/crypto_backend.hpp"

namespace nomq::detail {

SecretPage::~SecretPage() {
  if (key_ == nullptr) return;
  wipe_secret(*key_);
  if (locked_) (void)munlock(key_, size_);
  (void)munmap(key_, size_);
}

bool SecretPage::store(const Key& key) noexcept {
  if (key_ != nullptr) {
    *key_ = key;
    return true;
  }
  const long page = sysconf(_SC_PAGESIZE);
  size_ = page > 0 ? static_cast<std::size_t>(page) : 4096;
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
#ifdef MADV_DONTDUMP
  dontdump_ = madvise(p, size_, MADV_DONTDUMP) == 0;
#endif
#ifdef MADV_WIPEONFORK
  (void)madvise(p, size_, MADV_WIPEONFORK);
#endif
  locked_ = mlock(p, size_) == 0;  // best effort: RLIMIT_MEMLOCK may be 0
  key_ = new (p) Key(key);
  return true;
}

}  // namespace nomq::detail
