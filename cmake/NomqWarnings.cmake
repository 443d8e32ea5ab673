# Warnings as the engineering standard asks: -Wall -Wextra -Werror under g++ 12 and clang 14.
function(nomq_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion)
  if(NOMQ_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(NOMQ_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()
