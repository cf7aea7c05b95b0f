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

// At least the size of the kernel's xsave buffer (CPUID's size for every
// component the CPU supports): a buffer that large takes a whole
// PTRACE_GETREGSET NT_X86_XSTATE, without the 64 KiB guess whose zeroing
// costs a forked tracer 16 page faults.
size_t xsave_max_size();

UserX86FpregsEntry *fpu_to_image(Arena &arena, const std::vector<uint8_t> &xsave);
// Writes the image's state into buf, a valid xsave buffer of this CPU
// (read from the thread being restored). Fails if the image uses state
// components this CPU does not have.
Status fpu_from_image(const UserX86FpregsEntry &img, std::vector<uint8_t> &buf);

}  // namespace criu
