#include "net.h"

#include <fcntl.h>
#include <net/if.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string_view>

#include "log.h"
#include "magic.h"
#include "netdev.pb-c.h"
#include "sysctl.h"

namespace criu
{

namespace
{

// ---------------------------------------------------------------- rtnetlink

// A request: the netlink header, a fixed part (ifinfomsg, ...), attributes.
class NlMsg
{
public:
	NlMsg(uint16_t type, uint16_t flags, const void *fixed, size_t len) : buf_(NLMSG_HDRLEN, '\0')
	{
		auto *h = reinterpret_cast<nlmsghdr *>(buf_.data());
		h->nlmsg_type = type;
		h->nlmsg_flags = NLM_F_REQUEST | flags;
		append(fixed, len);
	}
	void append(const void *p, size_t len)
	{
		size_t at = buf_.size();
		buf_.resize(NLMSG_ALIGN(at + len));
		if (len)
			memcpy(buf_.data() + at, p, len);
	}
	void put(uint16_t type, const void *data, size_t len)
	{
		rtattr a = {(unsigned short)RTA_LENGTH(len), type};
		append(&a, sizeof(a));
		append(data, len);
	}
	void put_str(uint16_t type, const std::string &s) { put(type, s.c_str(), s.size() + 1); }
	void put_u32(uint16_t type, uint32_t v) { put(type, &v, sizeof(v)); }
	// A nested attribute: begin() returns where it starts, for end().
	size_t begin(uint16_t type)
	{
		size_t at = buf_.size();
		put(type, nullptr, 0);
		return at;
	}
	void end(size_t at) { reinterpret_cast<rtattr *>(buf_.data() + at)->rta_len = buf_.size() - at; }
	nlmsghdr *hdr()
	{
		auto *h = reinterpret_cast<nlmsghdr *>(buf_.data());
		h->nlmsg_len = buf_.size();
		return h;
	}

private:
	std::string buf_;
};

using Attrs = std::map<uint16_t, std::string_view>;

Attrs parse_attrs(std::string_view p)
{
	Attrs out;
	while (p.size() >= sizeof(rtattr)) {
		rtattr a;
		memcpy(&a, p.data(), sizeof(a));
		if (a.rta_len < sizeof(rtattr) || a.rta_len > p.size())
			break;
		out[a.rta_type & NLA_TYPE_MASK] = p.substr(RTA_LENGTH(0), a.rta_len - RTA_LENGTH(0));
		p.remove_prefix(std::min(p.size(), (size_t)RTA_ALIGN(a.rta_len)));
	}
	return out;
}

std::string attr_str(const Attrs &a, uint16_t type)
{
	auto it = a.find(type);
	if (it == a.end())
		return "";
	return std::string(it->second.substr(0, it->second.find('\0')));
}

uint32_t attr_u32(const Attrs &a, uint16_t type)
{
	uint32_t v = 0;
	if (auto it = a.find(type); it != a.end() && it->second.size() >= sizeof(v))
		memcpy(&v, it->second.data(), sizeof(v));
	return v;
}

// The kernel's answer to a failed request, with its extended ack message.
Error nl_error(const nlmsghdr *r, const std::string &what)
{
	nlmsgerr e;
	memcpy(&e, NLMSG_DATA(r), sizeof(e));
	std::string text;
	if (r->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = NLMSG_HDRLEN + sizeof(e);
		if (!(r->nlmsg_flags & NLM_F_CAPPED))
			off += e.msg.nlmsg_len - NLMSG_HDRLEN;
		if (off < r->nlmsg_len) {
			auto a = parse_attrs({reinterpret_cast<const char *>(r) + off, r->nlmsg_len - off});
			text = attr_str(a, NLMSGERR_ATTR_MSG);
		}
	}
	return Error{strfmt("can't %s: %s%s", what.c_str(), strerror(-e.error),
			    text.empty() ? "" : (" (" + text + ")").c_str())};
}

// An rtnetlink socket of the net namespace criu is in when it opens it (it
// stays there when criu moves).
class Rtnl
{
public:
	static Result<Rtnl> open()
	{
		Rtnl r;
		r.fd_.reset(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
		int one = 1;
		if (!r.fd_.valid() || setsockopt(r.fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) < 0)
			return sys_error("can't open an rtnetlink socket");
		return r;
	}

	// Sends m; the payloads of the answers, up to the ack or the end of the
	// dump. A failure says it could not `what`.
	Result<std::vector<std::string>> talk(NlMsg &m, const std::string &what)
	{
		nlmsghdr *h = m.hdr();
		h->nlmsg_seq = ++seq_;
		// NLM_F_DUMP is two bits, one of them NLM_F_EXCL of new objects
		if ((h->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
			h->nlmsg_flags |= NLM_F_ACK;
		if (send(fd_.get(), h, h->nlmsg_len, 0) != (ssize_t)h->nlmsg_len)
			return sys_error("can't %s", what.c_str());
		std::vector<std::string> out;
		std::vector<uint64_t> buf(1 << 13);
		for (;;) {
			ssize_t n = recv(fd_.get(), buf.data(), buf.size() * sizeof(buf[0]), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return sys_error("can't %s: no answer from the kernel", what.c_str());
			for (auto *r = reinterpret_cast<nlmsghdr *>(buf.data()); NLMSG_OK(r, n); r = NLMSG_NEXT(r, n)) {
				if (r->nlmsg_seq != seq_)
					continue;
				if (r->nlmsg_type == NLMSG_DONE)
					return out;
				if (r->nlmsg_type == NLMSG_ERROR) {
					last_error_ = -reinterpret_cast<nlmsgerr *>(NLMSG_DATA(r))->error;
					if (last_error_ == 0)
						return out;
					return nl_error(r, what);
				}
				out.emplace_back(static_cast<char *>(NLMSG_DATA(r)), r->nlmsg_len - NLMSG_HDRLEN);
			}
		}
	}

	// The errno of the kernel's last answer (0: it acked).
	int last_error() const { return last_error_; }

private:
	Fd fd_;
	uint32_t seq_ = 0;
	int last_error_ = 0;
};

// An rtnetlink socket of pid's net namespace: criu goes there only to open it.
Result<Rtnl> rtnl_of(pid_t pid)
{
	Fd mine(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
	Fd its(::open(strfmt("/proc/%d/ns/net", pid).c_str(), O_RDONLY | O_CLOEXEC));
	if (!mine.valid() || !its.valid() || setns(its.get(), CLONE_NEWNET) < 0)
		return sys_error("can't enter the net namespace of PID %d", pid);
	auto nl = Rtnl::open();
	if (setns(mine.get(), CLONE_NEWNET) < 0)
		return sys_error("can't return to criu's net namespace");
	return nl;
}

// ---------------------------------------------------------------- links

struct Link {
	int index = 0;
	unsigned flags = 0, type = 0, mtu = 0;
	int peer = 0;		    // IFLA_LINK: a veth's peer, in the peer's namespace
	bool peer_outside = false;  // IFLA_LINK_NETNSID: the peer is in another namespace
	std::string name, kind, mac;
};

Result<Link> parse_link(const std::string &msg)
{
	ifinfomsg ifi;
	if (msg.size() < sizeof(ifi))
		return Error{"rtnetlink answered with a truncated link"};
	memcpy(&ifi, msg.data(), sizeof(ifi));
	auto a = parse_attrs(std::string_view(msg).substr(NLMSG_ALIGN(sizeof(ifi))));
	Link l;
	l.index = ifi.ifi_index;
	l.flags = ifi.ifi_flags;
	l.type = ifi.ifi_type;
	l.name = attr_str(a, IFLA_IFNAME);
	l.mtu = attr_u32(a, IFLA_MTU);
	l.peer = attr_u32(a, IFLA_LINK);
	l.peer_outside = a.count(IFLA_LINK_NETNSID);
	if (auto it = a.find(IFLA_ADDRESS); it != a.end())
		l.mac = it->second;
	if (auto it = a.find(IFLA_LINKINFO); it != a.end())
		l.kind = attr_str(parse_attrs(it->second), IFLA_INFO_KIND);
	return l;
}

Result<std::vector<Link>> list_links(Rtnl &nl)
{
	ifinfomsg ifi{};
	NlMsg m(RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
	auto msgs = nl.talk(m, "list the net devices");
	if (!msgs)
		return msgs.error();
	std::vector<Link> links;
	for (auto &msg : *msgs) {
		auto l = parse_link(msg);
		if (!l)
			return l.error();
		links.push_back(std::move(*l));
	}
	return links;
}

// The device of that index, or else of that name.
Result<Link> get_link(Rtnl &nl, int index, const std::string &name)
{
	ifinfomsg ifi{};
	ifi.ifi_index = index;
	NlMsg m(RTM_GETLINK, 0, &ifi, sizeof(ifi));
	if (!index)
		m.put_str(IFLA_IFNAME, name);
	auto msgs = nl.talk(m, index ? strfmt("find net device %d", index) : "find net device " + name);
	if (!msgs)
		return msgs.error();
	if (msgs->size() != 1)
		return Error{strfmt("rtnetlink answered %zu links for one", msgs->size())};
	return parse_link(msgs->front());
}

// How netdev-ID.img calls the device, or why it is not saved.
Result<NdType> saved_type(const Link &l)
{
	if (l.flags & IFF_LOOPBACK)
		return ND_TYPE__LOOPBACK;
	if (l.kind == "veth" && l.peer_outside)
		return ND_TYPE__VETH;
	if (l.kind == "veth")
		return Error{strfmt("both ends of the veth pair %s are in it, which is not supported (a veth end "
				    "whose peer is outside is)",
				    l.name.c_str())};
	auto what = l.kind.empty() ? strfmt("link type %u", l.type) : l.kind;
	return Error{strfmt("device %s (%s) is in it, which is not supported: only lo and veth ends are saved",
			    l.name.c_str(), what.c_str())};
}

// Flags a restore sets; the others (running, lower up, ...) are the kernel's.
constexpr unsigned kSettableFlags = IFF_UP | IFF_DEBUG | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST;

Status configure_link(Rtnl &nl, const NetDeviceEntry &e)
{
	ifinfomsg ifi{};
	ifi.ifi_index = e.ifindex;
	ifi.ifi_flags = e.flags & kSettableFlags;
	ifi.ifi_change = kSettableFlags;
	NlMsg m(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	m.put_u32(IFLA_MTU, e.mtu);
	auto r = nl.talk(m, strfmt("set the MTU %u and flags 0x%x of %s", e.mtu, e.flags, e.name));
	return r ? Status() : r.error();
}

Status enslave(Rtnl &host, const Link &out, const VethPair &vp)
{
	auto br = get_link(host, 0, vp.bridge);
	if (!br)
		return Error{strfmt("--veth-pair %s=%s@%s: %s", vp.in.c_str(), vp.out.c_str(), vp.bridge.c_str(),
				    br.error().msg.c_str())};
	ifinfomsg ifi{};
	ifi.ifi_index = out.index;
	ifi.ifi_flags = ifi.ifi_change = IFF_UP;
	NlMsg m(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	m.put_u32(IFLA_MASTER, br->index);
	auto r = host.talk(m, strfmt("put %s into bridge %s and up", out.name.c_str(), vp.bridge.c_str()));
	return r ? Status() : r.error();
}

// The inner end as it was, with its peer in criu's namespace (back, where
// host is): named as vp says, else by the kernel. Its ifindex goes into
// created as soon as the pair exists.
Status create_veth(Rtnl &own, Rtnl &host, int back, const NetDeviceEntry &e, const VethPair *vp,
		   std::vector<int> &created)
{
	ifinfomsg ifi{};
	ifi.ifi_index = e.ifindex;
	NlMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	m.put_str(IFLA_IFNAME, e.name);
	m.put_u32(IFLA_MTU, e.mtu);
	if (e.has_address)
		m.put(IFLA_ADDRESS, e.address.data, e.address.len);
	size_t info = m.begin(IFLA_LINKINFO);
	m.put_str(IFLA_INFO_KIND, "veth");
	size_t data = m.begin(IFLA_INFO_DATA);
	size_t peer = m.begin(VETH_INFO_PEER);
	ifinfomsg peer_ifi{};
	m.append(&peer_ifi, sizeof(peer_ifi));
	if (vp)
		m.put_str(IFLA_IFNAME, vp->out);
	m.put_u32(IFLA_MTU, e.mtu);
	m.put_u32(IFLA_NET_NS_FD, back);
	m.end(peer);
	m.end(data);
	m.end(info);
	auto r = own.talk(m, strfmt("create the veth pair %s/%s", e.name, vp ? vp->out.c_str() : "(any name)"));
	if (!r)
		return r.error();
	created.push_back(e.ifindex);
	auto in = get_link(own, e.ifindex, "");
	if (!in)
		return in.error();
	auto out = get_link(host, in->peer, "");
	if (!out)
		return out.error();
	if (vp && !vp->bridge.empty())
		TRY(enslave(host, *out, *vp));
	pr_info("veth %s: its peer is %s in criu's net namespace%s%s\n", e.name, out->name.c_str(),
		vp && !vp->bridge.empty() ? ", in bridge " : "", vp ? vp->bridge.c_str() : "");
	return {};
}

// Deletes the veths of the new namespace criu is in (and so their peers).
void drop_veths(const std::vector<int> &indexes)
{
	auto nl = Rtnl::open();
	if (!nl) {
		pr_warn("%s\n", nl.error().msg.c_str());
		return;
	}
	for (int index : indexes) {
		ifinfomsg ifi{};
		ifi.ifi_index = index;
		NlMsg m(RTM_DELLINK, 0, &ifi, sizeof(ifi));
		if (auto r = nl->talk(m, strfmt("delete the veth pair of device %d", index)); !r)
			pr_warn("%s\n", r.error().msg.c_str());
	}
}

// A new namespace has its default rules already, and the kernel adds a rule
// again rather than refuse it: they go before the saved ones come back.
Status flush_rules(Rtnl &nl)
{
	fib_rule_hdr frh{};
	frh.family = AF_INET;
	NlMsg m(RTM_GETRULE, NLM_F_DUMP, &frh, sizeof(frh));
	auto rules = nl.talk(m, "list the IPv4 rules");
	if (!rules)
		return rules.error();
	for (auto &rule : *rules) {
		NlMsg del(RTM_DELRULE, 0, rule.data(), rule.size());
		if (auto r = nl.talk(del, "delete a default IPv4 rule"); !r)
			return r.error();
	}
	return {};
}

// ---------------------------------------------------------------- ip(8)

// Addresses, routes and rules are saved by iproute2 (`ip ... save`, whose
// format is what CRIU's images hold: a 4-byte magic, then the RTM_NEW*
// messages of the kernel's dump) and restored by sending those messages
// back (replay_ip_image): spawning `ip ... restore` cost 2-9 ms each.
struct IpImage {
	const char *prefix;  // of the image's name
	std::vector<const char *> args;
	uint32_t magic;
	uint16_t type;
};
const IpImage kIpImages[] = {
    {"ifaddr", {"addr"}, 0x47361222, RTM_NEWADDR},
    {"route", {"route"}, 0x45311224, RTM_NEWROUTE},
    {"route6", {"-6", "route"}, 0x45311224, RTM_NEWROUTE},
    {"rule", {"rule"}, 0x71706986, RTM_NEWRULE},
};

// `ip ARGS` in criu's net namespace, stdin and stdout on in and out (-1:
// /dev/null).
Status run_ip(const std::vector<const char *> &args, int in, int out)
{
	std::vector<std::string> argv{"ip"};
	argv.insert(argv.end(), args.begin(), args.end());
	return run_tool(argv, in, out);
}

std::vector<const char *> save_args(const IpImage &im)
{
	auto args = im.args;
	args.push_back("save");
	return args;
}

Status save_ip_images(const ImageDir &dir, uint32_t id)
{
	for (auto &im : kIpImages) {
		// without IPv6 `ip -6 route save` would save the IPv4 routes
		if (im.args[0] == std::string_view("-6") && !has_ipv6())
			continue;
		auto w = ImageWriter::create_raw(dir, strfmt("%s-%u.img", im.prefix, id));
		if (!w)
			return w.error();
		TRY(run_ip(save_args(im), -1, w->fd()));
		TRY(w->close());
	}
	return {};
}

// A route through a gateway (or several) needs the on-link routes that
// reach it: those go first.
bool via_gateway(const std::string &route)
{
	if (route.size() < sizeof(rtmsg))
		return false;
	auto a = parse_attrs(std::string_view(route).substr(NLMSG_ALIGN(sizeof(rtmsg))));
	return a.count(RTA_GATEWAY) || a.count(RTA_VIA) || a.count(RTA_MULTIPATH);
}

// The messages of an `ip ... save` image, as requests: each creates its
// object; one the kernel made already (EEXIST: the addresses' own routes,
// IPv6 link-local addresses) is left as it is, as `ip ... restore` does.
Status replay_ip_image(const IpImage &im, const std::string &name, const std::string &data, Rtnl &nl)
{
	uint32_t magic = 0;
	if (data.size() < sizeof(magic) || (memcpy(&magic, data.data(), sizeof(magic)), magic != im.magic))
		return Error{strfmt("image %s is not what `ip %s save` writes", name.c_str(), im.args.back())};
	std::vector<std::string> msgs;
	for (size_t off = sizeof(magic); off < data.size();) {
		nlmsghdr h;
		if (data.size() - off < sizeof(h))
			return Error{strfmt("image %s is truncated at byte %zu", name.c_str(), off)};
		memcpy(&h, data.data() + off, sizeof(h));
		if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > data.size() - off || h.nlmsg_type != im.type)
			return Error{strfmt("image %s: message %zu at byte %zu is not an rtnetlink message of type %u",
					    name.c_str(), msgs.size(), off, im.type)};
		msgs.emplace_back(data, off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN);
		off += NLMSG_ALIGN(h.nlmsg_len);
	}
	bool routes = im.type == RTM_NEWROUTE;
	for (bool gateways : {false, true})
		for (size_t i = 0; i < msgs.size(); i++) {
			if ((routes && via_gateway(msgs[i])) != gateways)
				continue;
			NlMsg m(im.type, NLM_F_CREATE | NLM_F_EXCL, msgs[i].data(), msgs[i].size());
			auto r = nl.talk(m, strfmt("restore entry %zu of %s", i, name.c_str()));
			if (!r && nl.last_error() != EEXIST)
				return r.error();
		}
	pr_debug("%s: %zu entries restored\n", name.c_str(), msgs.size());
	return {};
}

Status restore_ip_images(const ImageDir &dir, uint32_t id, Rtnl &nl)
{
	for (auto &im : kIpImages) {
		auto name = strfmt("%s-%u.img", im.prefix, id);
		Fd fd(openat(dir.fd(), name.c_str(), O_RDONLY | O_CLOEXEC));
		if (!fd.valid() && errno == ENOENT)
			continue;  // a dump without IPv6, or of lo alone by an older criu
		if (!fd.valid())
			return sys_error("can't open image %s/%s", dir.path().c_str(), name.c_str());
		auto data = read_file(strfmt("/proc/self/fd/%d", fd.get()), 64 << 20);
		if (!data)
			return Error{strfmt("image %s: %s", name.c_str(), data.error().msg.c_str())};
		if (data->empty())
			continue;
		if (im.prefix == std::string_view("rule"))
			TRY(flush_rules(nl));
		TRY(replay_ip_image(im, name, *data, nl));
	}
	return {};
}

// ---------------------------------------------------------------- images

Result<std::vector<PbPtr<NetDeviceEntry>>> read_devices(const ImageDir &dir, const std::string &name)
{
	auto r = ImageReader::open(dir, name, NETDEV_MAGIC);
	if (!r)
		return r.error();
	std::vector<PbPtr<NetDeviceEntry>> devs;
	for (;;) {
		auto e = r->next<NetDeviceEntry>(net_device_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		auto &d = **e;
		bool lo = d.type == ND_TYPE__LOOPBACK && d.ifindex == 1 && !strcmp(d.name, "lo");
		bool veth = d.type == ND_TYPE__VETH && d.ifindex > 1 && d.name[0] && strlen(d.name) < IFNAMSIZ &&
			    (!d.has_address || d.address.len <= 32);
		if (!lo && !veth)
			return Error{strfmt("%s: device %s (type %d, ifindex %u) is not supported: only lo (ifindex "
					    "1) and veth ends are",
					    name.c_str(), d.name, d.type, d.ifindex)};
		devs.push_back(std::move(*e));
	}
	return devs;
}

const VethPair *pair_for(const std::vector<VethPair> &veths, const char *inner)
{
	for (auto &v : veths)
		if (v.in == inner)
			return &v;
	return nullptr;
}

Status check_veth_options(const std::vector<VethPair> &veths, const std::vector<PbPtr<NetDeviceEntry>> &devs)
{
	for (auto &v : veths) {
		bool found = false;
		for (auto &d : devs)
			found = found || (d->type == ND_TYPE__VETH && v.in == d->name);
		if (!found)
			return Error{strfmt("--veth-pair %s=%s: the images have no veth %s", v.in.c_str(),
					    v.out.c_str(), v.in.c_str())};
	}
	return {};
}

// An interface name the kernel takes (see dev_valid_name()).
Status check_ifname(const std::string &name, const std::string &opt)
{
	if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == ".." ||
	    name.find_first_of("/: \t\n") != std::string::npos)
		return Error{strfmt("%s: '%s' is not a valid interface name", opt.c_str(), name.c_str())};
	return {};
}

Result<VethPair> make_pair(const std::string &in, const std::string &out_bridge, const std::string &opt)
{
	VethPair p;
	p.in = in;
	auto at = out_bridge.rfind('@');
	p.out = out_bridge.substr(0, at);
	TRY(check_ifname(p.in, opt));
	TRY(check_ifname(p.out, opt));
	if (at != std::string::npos) {
		p.bridge = out_bridge.substr(at + 1);
		TRY(check_ifname(p.bridge, opt));
	}
	return p;
}

}  // namespace

Status check_net_devices(pid_t pid)
{
	auto nl = rtnl_of(pid);
	if (!nl)
		return nl.error();
	auto links = list_links(*nl);
	if (!links)
		return Error{strfmt("PID %d: %s", pid, links.error().msg.c_str())};
	for (auto &l : *links)
		if (auto t = saved_type(l); !t)
			return Error{strfmt("PID %d lives in its own net namespace: %s; or dump the namespace as "
					    "external with --external net[INODE]:KEY",
					    pid, t.error().msg.c_str())};
	return {};
}

Status dump_netns(const ImageDir &dir, uint32_t id)
{
	auto nl = Rtnl::open();
	if (!nl)
		return nl.error();
	auto links = list_links(*nl);
	if (!links)
		return links.error();
	auto w = ImageWriter::create(dir, strfmt("netdev-%u.img", id), NETDEV_MAGIC);
	if (!w)
		return w.error();
	for (auto &l : *links) {
		auto t = saved_type(l);
		if (!t)
			return Error{"the tree's net namespace: " + t.error().msg};
		NetDeviceEntry e = NET_DEVICE_ENTRY__INIT;
		e.type = *t;
		e.ifindex = l.index;
		e.mtu = l.mtu;
		e.flags = l.flags;
		e.name = l.name.data();
		e.has_address = !l.mac.empty();
		e.address.len = l.mac.size();
		e.address.data = reinterpret_cast<uint8_t *>(l.mac.data());
		auto confs = DevConfs::read(l.name);
		confs.fill(e);
		TRY(w->write(&e.base));
		pr_info("net device %s (ifindex %d, %s) saved\n", l.name.c_str(), l.index,
			*t == ND_TYPE__VETH ? "veth" : "loopback");
	}
	TRY(w->close());
	TRY(dump_netns_confs(dir, id));
	return save_ip_images(dir, id);
}

Result<VethPair> parse_veth_pair(const std::string &s)
{
	auto eq = s.find('=');
	if (eq == std::string::npos)
		return Error{strfmt("--veth-pair %s: expected IN=OUT[@BRIDGE]", s.c_str())};
	return make_pair(s.substr(0, eq), s.substr(eq + 1), "--veth-pair " + s);
}

Result<std::optional<VethPair>> parse_veth_external(const std::string &s)
{
	if (!s.starts_with("veth["))
		return std::optional<VethPair>();
	auto rb = s.find("]:");
	if (rb == std::string::npos)
		return Error{strfmt("--external %s: expected veth[IN]:OUT[@BRIDGE]", s.c_str())};
	auto p = make_pair(s.substr(5, rb - 5), s.substr(rb + 2), "--external " + s);
	if (!p)
		return p.error();
	return std::optional<VethPair>(std::move(*p));
}

Result<OwnNetns> OwnNetns::enter(const ImageDir &dir, uint32_t id, const std::vector<VethPair> &veths)
{
	auto devs = read_devices(dir, strfmt("netdev-%u.img", id));
	if (!devs)
		return devs.error();
	TRY(check_veth_options(veths, *devs));
	auto host = Rtnl::open();
	if (!host)
		return host.error();
	OwnNetns n;
	n.back_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
	if (!n.back_.valid())
		return sys_error("can't open criu's net namespace");
	if (unshare(CLONE_NEWNET) < 0)
		return sys_error("can't create a net namespace");
	auto own = Rtnl::open();
	if (!own)
		return own.error();
	// before the devices: they take "default" when made
	TRY(restore_netns_confs(dir, id));
	for (auto &d : *devs) {
		if (d->type == ND_TYPE__VETH)
			TRY(create_veth(*own, *host, n.back_.get(), *d, pair_for(veths, d->name), n.created_));
		TRY(configure_link(*own, *d));
		TRY(restore_dev_confs(*d));
	}
	TRY(restore_ip_images(dir, id, *own));
	return n;
}

OwnNetns::~OwnNetns()
{
	if (!kept_ && !created_.empty())
		drop_veths(created_);
	if (back_.valid() && setns(back_.get(), CLONE_NEWNET) < 0)
		pr_err("can't return to criu's net namespace: %s\n", strerror(errno));
}

}  // namespace criu
