// Sysctls: reading and writing one, and those of a net namespace the tree
// owns, as CRIU keeps them:
// net.ipv4.conf.{all,default}.* and net.ipv6.conf.{all,default}.* and
// net.unix.max_dgram_qlen in netns-ID.img, each device's
// net.ipv{4,6}.conf.DEV.* in its netdev-ID.img entry. An entry's position
// in its list names the sysctl (CRIU's lists, which are the format); one
// the dumping kernel lacks is saved without a value and left alone.
//
// Both sides work on the net namespace criu is in (/proc/sys/net is the
// reader's). Restore writes a value only where the new namespace differs,
// "all" before "default" before the devices, accept_redirects last of a
// set (forwarding resets it); a write the kernel refuses fails the restore
// naming the sysctl. An image without netns-ID.img (an older dump) leaves
// the new namespace's sysctls as they are.
#pragma once

#include <memory>
#include <string>

#include "image.h"
#include "netdev.pb-c.h"
#include "util.h"

namespace criu
{

// /proc/sys/NAME of criu's namespaces ("kernel/msgmnb"): a number, or set.
Result<uint64_t> read_sysctl(const char *name);
Status write_sysctl(const char *name, const std::string &value);

bool has_ipv6();

// A device's conf4/conf6, owning what the entry points to.
class DevConfs
{
public:
	DevConfs();
	~DevConfs();
	DevConfs(DevConfs &&) noexcept;
	static DevConfs read(const std::string &dev);
	// Sets e.conf4/e.conf6; e must not outlive this.
	void fill(NetDeviceEntry &e);

private:
	struct Sets;
	std::unique_ptr<Sets> s_;
};

Status dump_netns_confs(const ImageDir &dir, uint32_t id);

Status restore_netns_confs(const ImageDir &dir, uint32_t id);
Status restore_dev_confs(const NetDeviceEntry &e);

}  // namespace criu
