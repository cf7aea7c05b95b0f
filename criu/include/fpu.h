// x86 FPU/SSE/AVX/AVX-512/PKRU state: between the kernel's standard-format
// xsave buffer (PTRACE_GETREGSET NT_X86_XSTATE) and CRIU's fpregs/xsave
// image fields. Component offsets come from CPUID leaf 0xD.
#pragma once

#include <cstdint>
#include <vector>

#include "arena.h"
#include "util.h"

struct UserX86FpregsEntry;

namespace criu
{

UserX86FpregsEntry *fpu_to_image(Arena &arena, const std::vector<uint8_t> &xsave);
// Writes the image's state into buf, a valid xsave buffer of this CPU
// (read from the thread being restored). Fails if the image uses state
// components this CPU does not have.
Status fpu_from_image(const UserX86FpregsEntry &img, std::vector<uint8_t> &buf);

}  // namespace criu
