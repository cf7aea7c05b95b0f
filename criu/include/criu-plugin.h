/*
 * The plugin ABI of this criu: C-compatible, so plugins can be written in
 * C or C++ (extern "C" for the descriptor). It keeps CRIU's descriptor
 * layout (cr_plugin_desc_t), version scheme and hook numbers 0..9, so the
 * same source builds against CRIU's header; this project's own hooks start
 * at 32, leaving upstream room to grow without a clash.
 *
 * A plugin is a shared object in the plugin directory (-L/--libdir, by
 * default $(PREFIX)/lib/criu) that exports `cr_plugin_desc_t
 * CR_PLUGIN_DESC`. criu loads every *.so there at start, checks that the
 * major version matches, calls init(stage) once and exit(stage, ret) at
 * the end, and calls the hooks a plugin filled in. A hook returns 0 on
 * success, a negative errno on failure (criu then fails the operation
 * with the plugin's name in the message), or -ENOTSUP when the call is
 * not for this plugin (criu goes on to the next plugin or its own code).
 *
 * Every hook runs in the criu process itself (not in the restored task),
 * with criu's credentials, after criu parsed its options.
 */
#ifndef CRIU_PLUGIN_H
#define CRIU_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRIU_PLUGIN_GEN_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#define CRIU_PLUGIN_VERSION_MAJOR 0
#define CRIU_PLUGIN_VERSION_MINOR 3
#define CRIU_PLUGIN_VERSION_SUBLEVEL 0
#define CRIU_PLUGIN_VERSION                                                                                            \
	CRIU_PLUGIN_GEN_VERSION(CRIU_PLUGIN_VERSION_MAJOR, CRIU_PLUGIN_VERSION_MINOR, CRIU_PLUGIN_VERSION_SUBLEVEL)

enum {
	/* CRIU's hooks, same numbers and signatures. This criu calls only
	 * RESUME_DEVICES_LATE (after a restored task runs, with its PID);
	 * the others are accepted in a descriptor and never called yet. */
	CR_PLUGIN_HOOK__DUMP_UNIX_SK = 0,
	CR_PLUGIN_HOOK__RESTORE_UNIX_SK = 1,
	CR_PLUGIN_HOOK__DUMP_EXT_FILE = 2,
	CR_PLUGIN_HOOK__RESTORE_EXT_FILE = 3,
	CR_PLUGIN_HOOK__DUMP_EXT_MOUNT = 4,
	CR_PLUGIN_HOOK__RESTORE_EXT_MOUNT = 5,
	CR_PLUGIN_HOOK__DUMP_EXT_LINK = 6,
	CR_PLUGIN_HOOK__HANDLE_DEVICE_VMA = 7,
	CR_PLUGIN_HOOK__UPDATE_VMA_MAP = 8,
	CR_PLUGIN_HOOK__RESUME_DEVICES_LATE = 9,

	/* This project's hooks. */

	/* `criu COMMAND ARGS...` for a command the core does not know:
	 * int command(const char *cmd, int argc, char **argv), argv[0] being
	 * the command. Return -ENOTSUP if cmd is not the plugin's; otherwise
	 * criu exits 0 if the hook returned 0, 1 if not. */
	CR_PLUGIN_HOOK__COMMAND = 32,

	/* `criu restore --mm-template NAME`, before criu reads any image:
	 * int restore_delegate(int argc, char **argv, int *pid, char *err,
	 * size_t errlen), argv being criu's whole command line. A plugin that
	 * restores the task elsewhere (in a template holder, through
	 * criu_template_restore) returns 0 with the restored root's PID;
	 * -ENOTSUP if the template is not its; another -errno with a message
	 * in err if the restore failed (nothing is left behind). Runs in criu. */
	CR_PLUGIN_HOOK__RESTORE_DELEGATE = 33,

	/* `criu service`, a connection whose request is a RESTORE with
	 * mm_template NAME: int rpc_hand_over(const char *name, int conn_fd,
	 * const void *req, size_t len, char *err, size_t errlen), req being
	 * that request as it came (a packed criu_req). A plugin that hands the
	 * connection to a process that serves it from that request on
	 * (through criu_template_serve) returns 0 once that process ended;
	 * criu then leaves the connection alone. -ENOTSUP if the template is
	 * not its; another -errno with a message in err if it could not hand
	 * it over (the connection is still criu's). Runs in criu. */
	CR_PLUGIN_HOOK__RPC_HAND_OVER = 34,

	CR_PLUGIN_HOOK__MAX
};

typedef int(cr_plugin_resume_devices_late_t)(int pid);
typedef int(cr_plugin_command_t)(const char *cmd, int argc, char **argv);
typedef int(cr_plugin_restore_delegate_t)(int argc, char **argv, int *pid, char *err, size_t errlen);
typedef int(cr_plugin_rpc_hand_over_t)(const char *name, int conn_fd, const void *req, size_t len, char *err,
				       size_t errlen);

/* The stage criu is in when it calls init() and exit(). */
enum {
	CR_PLUGIN_STAGE__DUMP,
	CR_PLUGIN_STAGE__PRE_DUMP,
	CR_PLUGIN_STAGE__RESTORE,
	CR_PLUGIN_STAGE__COMMAND, /* this project: any other command */
	CR_PLUGIN_STAGE_MAX
};

typedef struct {
	const char *name;
	int (*init)(int stage);
	void (*exit)(int stage, int ret);
	unsigned int version;
	unsigned int max_hooks; /* entries of hooks[] this plugin knows */
	void *hooks[CR_PLUGIN_HOOK__MAX];
} cr_plugin_desc_t;

extern cr_plugin_desc_t CR_PLUGIN_DESC;

/* The images directory of the current operation, as an open fd (-1 if
 * there is none). Provided by criu. */
extern int criu_get_image_dir(void);

/* The value of a long option of criu's command line ("images-dir",
 * "mm-template", "mem-pool", "dax-device", "libdir", "log-file",
 * "work-dir"), or NULL if it was not given. Provided by criu. */
extern const char *criu_get_option(const char *name);

/* criu's log, with CRIU's levels (1 error .. 4 debug). */
extern void criu_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A range of memory a template holder has in place, [start, end); dev and
 * ino identify the file it maps (0 if none, or if not to be checked). */
struct cr_held_range {
	uint64_t start, end;
	uint64_t dev, ino;
};

/* In a template holder: maps the root task's private memory of the dump
 * in images_dir_fd at its dumped addresses in the calling process, filled
 * from the pages images in pages_dir_fd, and returns the ranges in *held
 * (to free()). Returns 0; -EEXIST if an address is taken in the caller
 * (re-execute to get another address space layout); another -errno with a
 * message in err. Provided by criu. */
extern int criu_template_hold(int images_dir_fd, int pages_dir_fd, struct cr_held_range **held, unsigned *nr_held,
			      char *err, size_t errlen);

/* In a child of a template holder: runs `criu restore` as argv (criu's
 * command line) asks, with the held ranges inherited copy-on-write and the
 * other pages read from pages_dir_fd, and returns 0 with the restored
 * root's PID (its parent is the caller), or -1 with a message in err.
 * Provided by criu. */
extern int criu_template_restore(int argc, char **argv, const struct cr_held_range *held, unsigned nr_held,
				 int pages_dir_fd, int *pid, char *err, size_t errlen);

/* In a child of a template holder that will call criu_template_restore
 * later: creates the restore's root task now (a copy of the caller, so of
 * the held memory), waiting for the request, so that the restore does not
 * wait for that copy. pages_dir_fd must hold a full copy of the dump.
 * Returns 0 once it exists; -ENOTSUP if this dump's restore can't be
 * prepared (its root has no pid namespace of its own, where it can wait as
 * PID 1 of a new one without holding the dump's PID, or it needs criu in
 * new net or mount namespaces first); -EINVAL with a message in err. With
 * --switch the root enters the sandbox's namespaces itself. A request the
 * prepared root can't serve (--inherit-fd, --root, external namespaces
 * without --switch, rst_sibling) kills it and restores the ordinary way.
 * Provided by criu. */
extern int criu_template_prepare(const struct cr_held_range *held, unsigned nr_held, int pages_dir_fd, char *err,
				 size_t errlen);

/* In a child of a template holder: serves the CRIU RPC connection conn_fd
 * (criu_req/criu_resp, as `criu service` does; it takes the fd) as the
 * template name's own socket. Its first RESTORE request is restored here,
 * with the held ranges inherited copy-on-write and the other pages read
 * from pages_dir_fd: of the images at the path images (the template's copy
 * of the dump) if the request's images_dir_fd is -1, else of the client's,
 * once check_images(their path, arg) returned 0 (else it is refused with
 * the message check_images put in err). check_images is called with ""
 * for the template's own images. first (len bytes, a packed criu_req) is
 * the connection's first request where another process read it already
 * (see CR_PLUGIN_HOOK__RPC_HAND_OVER), else NULL. Returns the exit code for
 * the process. Provided by criu. */
extern int criu_template_serve(int conn_fd, const char *name, const char *images, const struct cr_held_range *held,
			       unsigned nr_held, int pages_dir_fd,
			       int (*check_images)(const char *images_dir, void *arg, char *err, size_t errlen),
			       void *arg, const void *first, size_t len);

/* In a process forked to serve a request that has not come yet (a
 * holder's spare): maps its own copy of its private writable pages and the
 * page cache's pages of its code now, but in the ranges of skip (the held
 * memory), so that serving the request does not fault on each page it
 * first touches. Takes a fraction of a millisecond and the memory of those
 * pages; call it while nothing waits. Provided by criu. */
extern void criu_own_pages_ahead(const struct cr_held_range *skip, unsigned nr_skip);

/* In a worker that answered its client on fd: waits at idle priority for
 * the client to hang up (timeout_ms at most), so that the worker's exit
 * does not compete with the client for the CPUs. Provided by criu. */
extern void criu_linger(int fd, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
