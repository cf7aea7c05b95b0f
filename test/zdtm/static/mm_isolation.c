/*
 * mm_isolation: the memory of template instances is private to each.
 * Run as the init of a pid namespace (unshare -p -f, see
 * test_mm_template_isolation) so that many instances can run at once:
 * it fills 8 MiB of anonymous memory with a pattern and publishes its
 * address in ./addr.  The harness writes a marker of its own into the
 * first word of each instance (through /proc/PID/mem) and reads them all
 * back.  On SIGTERM each instance checks that the rest of the pattern is
 * intact.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SZ (8 << 20)

int main(int argc, char **argv)
{
	unsigned char *a, *ref;
	char buf[64];
	int fd, n;

	test_init(argc, argv);
	a = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		fail("mmap: %m");
	test_fill(a, SZ, 0x150);
	n = snprintf(buf, sizeof(buf), "%lx\n", (unsigned long)a);
	fd = open("addr.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, n) != n || close(fd) || rename("addr.tmp", "addr"))
		fail("addr: %m");
	test_daemon();
	test_waitsig();
	ref = malloc(SZ);
	if (!ref)
		fail("malloc: %m");
	test_fill(ref, SZ, 0x150);
	if (memcmp(a + 8, ref + 8, SZ - 8))
		fail("the pattern changed beyond the harness's marker");
	pass();
}
