/*
 * Image magic numbers, compatible with CRIU 3.17 (values as listed by
 * pycriu/images/magic.py).  Usable from both C and C++.
 *
 * Image file framing (all integers are u32, little-endian):
 *
 *   IMAGE   ::= HEAD { ENTRY }
 *   HEAD    ::= IMG_COMMON_MAGIC  <image magic>      -- most images
 *             | IMG_SERVICE_MAGIC <image magic>      -- STATS, IRMAP_CACHE
 *             | INVENTORY_MAGIC                      -- inventory.img only
 *   ENTRY   ::= SIZE PAYLOAD [ EXTRA ]
 *   SIZE    ::= length of PAYLOAD in bytes
 *   PAYLOAD ::= one packed protobuf message of the image's entry type
 *
 * EXTRA is raw data that some entry types carry after their payload:
 *   - pipes-data.img / fifo-data.img: pipe_data_entry followed by
 *     `bytes` raw bytes of buffered data;
 *   - ghost-file-<id>.img: a single ghost_file_entry; if `chunks` is set,
 *     it is followed by ghost_chunk_entry entries each trailed by `len`
 *     raw bytes, otherwise by the whole file contents up to EOF.
 *
 * pagemap-<id>.img: the first entry is a pagemap_head, all later entries
 * are pagemap_entry.  pages-<id>.img files are raw page data with no
 * magic and no framing.
 *
 * CRTOOLS_IMAGES_V1_1 is not an image magic: it is the value written to
 * inventory_entry.img_version.  It is also provided with the _MAGIC
 * suffix for uniformity.
 */
#ifndef IMAGES_MAGIC_H
#define IMAGES_MAGIC_H

#define CRTOOLS_IMAGES_V1_1             2
#define CRTOOLS_IMAGES_V1_1_MAGIC       0x00000002
#define IMG_COMMON_MAGIC                0x54564319
#define IMG_SERVICE_MAGIC               0x55105940
#define INVENTORY_MAGIC                 0x58313116
#define PSTREE_MAGIC                    0x50273030
#define FDINFO_MAGIC                    0x56213732
#define PAGEMAP_MAGIC                   0x56084025
#define CORE_MAGIC                      0x55053847
#define IDS_MAGIC                       0x54432030
#define VMAS_MAGIC                      0x54123737
#define PIPES_MAGIC                     0x56513555
#define PIPES_DATA_MAGIC                0x56453709
#define FIFO_MAGIC                      0x58364939
#define FIFO_DATA_MAGIC                 0x59333054
#define SIGACT_MAGIC                    0x55344201
#define UNIXSK_MAGIC                    0x54373943
#define INETSK_MAGIC                    0x56443851
#define PACKETSK_MAGIC                  0x60454618
#define ITIMERS_MAGIC                   0x57464056
#define POSIX_TIMERS_MAGIC              0x52603957
#define SK_QUEUES_MAGIC                 0x56264026
#define UTSNS_MAGIC                     0x54473203
#define CREDS_MAGIC                     0x54023547
#define IPC_VAR_MAGIC                   0x53115007
#define IPCNS_SHM_MAGIC                 0x46283044
#define IPCNS_MSG_MAGIC                 0x55453737
#define IPCNS_SEM_MAGIC                 0x59573019
#define REG_FILES_MAGIC                 0x50363636
#define EXT_FILES_MAGIC                 0x59255641
#define FS_MAGIC                        0x51403912
#define MM_MAGIC                        0x57492820
#define REMAP_FPATH_MAGIC               0x59133954
#define GHOST_FILE_MAGIC                0x52583605
#define TCP_STREAM_MAGIC                0x51465506
#define EVENTFD_FILE_MAGIC              0x44523722
#define EVENTPOLL_FILE_MAGIC            0x45023858
#define EVENTPOLL_TFD_MAGIC             0x44433746
#define SIGNALFD_MAGIC                  0x57323820
#define INOTIFY_FILE_MAGIC              0x48424431
#define INOTIFY_WD_MAGIC                0x54562009
#define MNTS_MAGIC                      0x55563928
#define NETDEV_MAGIC                    0x57373951
#define NETNS_MAGIC                     0x55933752
#define TTY_FILES_MAGIC                 0x59433025
#define TTY_INFO_MAGIC                  0x59453036
#define TTY_DATA_MAGIC                  0x59413026
#define FILE_LOCKS_MAGIC                0x54323616
#define RLIMIT_MAGIC                    0x57113925
#define FANOTIFY_FILE_MAGIC             0x55096122
#define FANOTIFY_MARK_MAGIC             0x56506035
#define SIGNAL_MAGIC                    0x59255647
#define NETLINK_SK_MAGIC                0x58005614
#define NS_FILES_MAGIC                  0x61394011
#define TUNFILE_MAGIC                   0x57143751
#define CGROUP_MAGIC                    0x59383330
#define TIMERFD_MAGIC                   0x50493712
#define CPUINFO_MAGIC                   0x61404013
#define USERNS_MAGIC                    0x55474906
#define SECCOMP_MAGIC                   0x64413049
#define BINFMT_MISC_MAGIC               0x67343323
#define AUTOFS_MAGIC                    0x49353943
#define FILES_MAGIC                     0x56303138
#define MEMFD_INODE_MAGIC               0x48453499
#define TIMENS_MAGIC                    0x43114433
#define PIDNS_MAGIC                     0x61157326
#define BPFMAP_FILE_MAGIC               0x57506142
#define BPFMAP_DATA_MAGIC               0x64324033
#define APPARMOR_MAGIC                  0x59423047
#define STATS_MAGIC                     0x57093306
#define IRMAP_CACHE_MAGIC               0x57004059
#define KDAT_MAGIC                      0x57023458

#endif /* IMAGES_MAGIC_H */
