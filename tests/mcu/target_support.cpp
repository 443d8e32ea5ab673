// What libstdc++ would otherwise bring in from its exception machinery. Built with
// -fno-exceptions, the headers still call these when a container's size limit or an allocation
// fails; the library versions throw, which links about 10 KB of libstdc++ and the unwinder.
// On the target such a failure is fatal: trap.
namespace std {

[[noreturn]] void __throw_bad_alloc() { __builtin_trap(); }
[[noreturn]] void __throw_length_error(const char*) { __builtin_trap(); }
[[noreturn]] void __throw_bad_array_new_length() { __builtin_trap(); }
[[noreturn]] void __throw_out_of_range_fmt(const char*, ...) { __builtin_trap(); }
[[noreturn]] void __throw_out_of_range(const char*) { __builtin_trap(); }
[[noreturn]] void __throw_logic_error(const char*) { __builtin_trap(); }
[[noreturn]] void __throw_invalid_argument(const char*) { __builtin_trap(); }
[[noreturn]] void __throw_bad_optional_access() { __builtin_trap(); }
[[noreturn]] void __throw_bad_variant_access(const char*) { __builtin_trap(); }
[[noreturn]] void __throw_bad_variant_access(bool) { __builtin_trap(); }

}  // namespace std
