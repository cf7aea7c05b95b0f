// Network devices, addresses, routes and rules of a net namespace the tree
// owns.
//
// Dump: lo and veth ends whose peer is outside the namespace are saved in
// netdev-ID.img (name, ifindex, MTU, flags, MAC); addresses, routes and
// rules as CRIU saves them, the raw output of `ip addr save`,
// `ip route save`, `ip -6 route save` and `ip rule save` (ifaddr-,
// route-, route6- and rule-ID.img, images without a magic); the net
// sysctls with them (sysctl.h). Any other
// device (bridge, tun, macvlan, both ends of a veth pair, ...) is refused
// naming the PID and the device, before anything is seized.
// Restore: criu moves into a new net namespace and makes lo and every veth
// again with its ifindex, name, MTU, MAC and flags, the peer in criu's own
// namespace, named by --veth-pair IN=OUT[@BRIDGE] (or --external
// veth[IN]:OUT[@BRIDGE]) or else by the kernel (unique, logged), and put
// into BRIDGE (up) if one is given; the sysctls (the namespace's before
// the devices are made, each device's after); then the addresses, routes
// and rules, the images' rtnetlink messages sent back as requests (what
// the kernel made already is left as it is).
// A restore that fails deletes the pairs it made: nothing is left on the
// host.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "image.h"
#include "options.h"
#include "util.h"

namespace criu
{

// Dump, before the tree is seized: every device of pid's own net namespace
// is one dump_netns saves.
Status check_net_devices(pid_t pid);

// Dump, with criu in the tree's net namespace.
Status dump_netns(const ImageDir &dir, uint32_t id);

// "IN=OUT[@BRIDGE]" of --veth-pair.
Result<VethPair> parse_veth_pair(const std::string &s);
// "veth[IN]:OUT[@BRIDGE]" of --external; nullopt for other kinds.
Result<std::optional<VethPair>> parse_veth_external(const std::string &s);

// criu in a new net namespace with the dump's devices, addresses and routes
// while it restores: sockets it opens for the tree and the tree itself are
// created there. Back in criu's own when this goes out of scope; the veth
// pairs made go too unless keep() was called (the restore succeeded).
class OwnNetns
{
public:
	OwnNetns() = default;
	OwnNetns(OwnNetns &&) = default;
	~OwnNetns();
	static Result<OwnNetns> enter(const ImageDir &dir, uint32_t id, const std::vector<VethPair> &veths);
	void keep() { kept_ = true; }

private:
	Fd back_;		    // criu's own net namespace
	std::vector<int> created_;  // ifindexes of the veths made in the new one
	bool kept_ = false;
};

}  // namespace criu
