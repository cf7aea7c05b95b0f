#include "fpu.h"

#include <cpuid.h>
#include <string.h>

#include "core-x86.pb-c.h"

namespace criu
{

namespace
{

constexpr size_t kLegacy = 512, kHeader = 64;
enum Comp { kYmm = 2, kBndRegs = 3, kBndCsr = 4, kOpmask = 5, kZmmHi256 = 6, kHi16Zmm = 7, kPkru = 9 };

struct CompLayout {
	uint32_t offset = 0, size = 0;
};

// CPUID traps to the hypervisor in a VM (3-4 us each here; reading the
// layout took 60 us of every restored thread): read once, when criu starts,
// so that forked service workers and spares have it.
struct XsaveLayout {
	uint64_t supported = 3;
	size_t max_size = 64 * 1024;
	CompLayout comp[kPkru + 1];
	XsaveLayout()
	{
		unsigned a, b, c, d;
		if (__get_cpuid_max(0, nullptr) < 0xd)
			return;
		__cpuid_count(0xd, 0, a, b, c, d);
		supported = a | ((uint64_t)d << 32);
		max_size = c;
		for (int i = kYmm; i <= kPkru; i++)
			if (supported & (1ULL << i)) {
				__cpuid_count(0xd, i, a, b, c, d);
				comp[i] = {b, a};
			}
	}
};
const XsaveLayout g_layout;

CompLayout layout(int comp)
{
	return g_layout.comp[comp];
}

uint64_t supported_mask()
{
	return g_layout.supported;
}

template <class T> T *take(Arena &arena, const std::vector<uint8_t> &x, CompLayout l, size_t bytes, size_t *n)
{
	*n = 0;
	if (!l.size || l.offset + bytes > x.size())
		return nullptr;
	T *a = arena.array<T>(bytes / sizeof(T));
	memcpy(a, x.data() + l.offset, bytes);
	*n = bytes / sizeof(T);
	return a;
}

template <class T> void put(std::vector<uint8_t> &x, CompLayout l, const T *src, size_t n)
{
	if (n && l.size && l.offset + n * sizeof(T) <= x.size())
		memcpy(x.data() + l.offset, src, std::min<size_t>(n * sizeof(T), l.size));
}

}  // namespace

size_t xsave_max_size()
{
	return g_layout.max_size;
}

UserX86FpregsEntry *fpu_to_image(Arena &arena, const std::vector<uint8_t> &x)
{
	auto *f = arena.make<UserX86FpregsEntry>(USER_X86_FPREGS_ENTRY__INIT);
	const uint8_t *p = x.data();
	uint16_t cwd, swd, fop;
	memcpy(&cwd, p, 2);
	memcpy(&swd, p + 2, 2);
	f->cwd = cwd;
	f->swd = swd;
	f->twd = p[4];
	memcpy(&fop, p + 6, 2);
	f->fop = fop;
	memcpy(&f->rip, p + 8, 8);
	memcpy(&f->rdp, p + 16, 8);
	memcpy(&f->mxcsr, p + 24, 4);
	memcpy(&f->mxcsr_mask, p + 28, 4);
	f->n_st_space = 32;
	f->st_space = arena.array<uint32_t>(32);
	memcpy(f->st_space, p + 32, 128);
	f->n_xmm_space = 64;
	f->xmm_space = arena.array<uint32_t>(64);
	memcpy(f->xmm_space, p + 160, 256);
	f->n_padding = 24;
	f->padding = arena.array<uint32_t>(24);
	memcpy(f->padding, p + 416, 96);
	if (x.size() < kLegacy + kHeader)
		return f;

	auto *xs = arena.make<UserX86XsaveEntry>(USER_X86_XSAVE_ENTRY__INIT);
	memcpy(&xs->xstate_bv, p + kLegacy, 8);
	xs->ymmh_space = take<uint32_t>(arena, x, layout(kYmm), 256, &xs->n_ymmh_space);
	xs->bndreg_state = take<uint64_t>(arena, x, layout(kBndRegs), 64, &xs->n_bndreg_state);
	xs->bndcsr_state = take<uint64_t>(arena, x, layout(kBndCsr), 16, &xs->n_bndcsr_state);
	xs->opmask_reg = take<uint64_t>(arena, x, layout(kOpmask), 64, &xs->n_opmask_reg);
	xs->zmm_upper = take<uint64_t>(arena, x, layout(kZmmHi256), 512, &xs->n_zmm_upper);
	xs->hi16_zmm = take<uint64_t>(arena, x, layout(kHi16Zmm), 1024, &xs->n_hi16_zmm);
	xs->pkru = take<uint32_t>(arena, x, layout(kPkru), 8, &xs->n_pkru);
	f->xsave = xs;
	return f;
}

Status fpu_from_image(const UserX86FpregsEntry &f, std::vector<uint8_t> &x)
{
	if (x.size() < kLegacy)
		return Error{"xsave buffer too small"};
	if (f.n_st_space != 32 || f.n_xmm_space != 64)
		return Error{strfmt("fpregs: st_space/xmm_space have %zu/%zu words, expected 32/64", f.n_st_space,
				    f.n_xmm_space)};
	uint8_t *p = x.data();
	uint16_t cwd = f.cwd, swd = f.swd, fop = f.fop;
	memcpy(p, &cwd, 2);
	memcpy(p + 2, &swd, 2);
	p[4] = f.twd;
	memcpy(p + 6, &fop, 2);
	memcpy(p + 8, &f.rip, 8);
	memcpy(p + 16, &f.rdp, 8);
	memcpy(p + 24, &f.mxcsr, 4);
	memcpy(p + 28, &f.mxcsr_mask, 4);
	memcpy(p + 32, f.st_space, 128);
	memcpy(p + 160, f.xmm_space, 256);
	if (!f.xsave || x.size() < kLegacy + kHeader)
		return {};
	const auto &xs = *f.xsave;
	uint64_t have = supported_mask();
	if (xs.xstate_bv & ~have)
		return Error{strfmt("the image uses xsave components 0x%llx this CPU lacks (has 0x%llx)",
				    (unsigned long long)xs.xstate_bv, (unsigned long long)have)};
	memcpy(p + kLegacy, &xs.xstate_bv, 8);
	memset(p + kLegacy + 8, 0, 8);	// xcomp_bv: standard format
	put(x, layout(kYmm), xs.ymmh_space, xs.n_ymmh_space);
	put(x, layout(kBndRegs), xs.bndreg_state, xs.n_bndreg_state);
	put(x, layout(kBndCsr), xs.bndcsr_state, xs.n_bndcsr_state);
	put(x, layout(kOpmask), xs.opmask_reg, xs.n_opmask_reg);
	put(x, layout(kZmmHi256), xs.zmm_upper, xs.n_zmm_upper);
	put(x, layout(kHi16Zmm), xs.hi16_zmm, xs.n_hi16_zmm);
	put(x, layout(kPkru), xs.pkru, xs.n_pkru);
	return {};
}

}  // namespace criu
