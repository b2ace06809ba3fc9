/*
 * sftp_int.h — internals of the SFTP storage plugin (dimple-sftp.so),
 * shared by sftp.c (vtable, config), sftp_conn.c (connection, host key,
 * authentication, the extension channel) and sftp_ops.c (put/get/list/
 * remove). Not part of any public interface.
 */
#ifndef DIMPLE_SFTP_INT_H
#define DIMPLE_SFTP_INT_H

#include <dimple/plugin.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <stddef.h>
#include <stdint.h>

/* Temporary objects are named <folder>/.dimple-tmp-<16 hex digits>. list()
 * never reports such names and put() refuses keys containing them. */
#define SFTP_TMP_PREFIX ".dimple-tmp-"
#define SFTP_TMP_PREFIX_LEN (sizeof SFTP_TMP_PREFIX - 1)
/* A temporary object untouched this long is a crashed writer's leftover;
 * list() removes it. Far longer than any single put can take. */
#define SFTP_TMP_STALE_SECONDS (24L * 3600)
/* Longest key (bytes) and segment: what POSIX servers accept. */
#define SFTP_KEY_MAX 1024
#define SFTP_SEGMENT_MAX 255

enum sftp_hostkey_check {
    SFTP_HKC_STRICT = 0,
    SFTP_HKC_ACCEPT_NEW = 1,
    SFTP_HKC_OFF = 2
};

typedef struct sftp_store {
    const dimple_host *host;

    /* configuration */
    char *hostname; /* as configured: used to connect */
    char *khname;   /* lower case: used to look up known_hosts */
    int port;
    char *user;
    char *root; /* `path`, without a trailing '/' (unless "/") */
    char *key_file;
    char *key_passphrase; /* secret */
    char *password;       /* secret */
    char *known_hosts;
    int hostkey_check; /* enum sftp_hostkey_check */
    long timeout_ms;
    char where[384]; /* "user@host:port" for messages */

    /* connection (all NULL / -1 when disconnected) */
    int sock;
    LIBSSH2_SESSION *session;
    LIBSSH2_SFTP *sftp;
    /* A second, raw SFTP channel for the requests libssh2 1.10 has no API
     * for (posix-rename@openssh.com). Opened on first use. */
    LIBSSH2_CHANNEL *ext;
    uint32_t ext_id;
    int ext_state;        /* 0 not opened, 1 open, -1 failed (do not retry) */
    int has_posix_rename; /* the server advertised posix-rename@openssh.com */
    int fsync_state;      /* 0 unknown, 1 works, -1 unsupported by the server */
    int told_no_rename;   /* logged that put falls back (once a connection) */

    /* Set by sftp__fail when a call failed below the SFTP level (socket,
     * timeout, channel): the session is unusable and is dropped. */
    int broken;
    /* Counts connections made, for tests through the log. */
    unsigned connects;
} sftp_store;

/* ---- sftp.c */
/* Record an error "where: message" and return code. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int sftp__err(sftp_store *s, int code, const char *fmt, ...);

/* ---- sftp_conn.c */
void sftp__global_init(void);
/* Connect, verify the host key, authenticate, start SFTP. */
int sftp__connect(sftp_store *s);
/* Drop the connection. A broken one is not asked to close politely. */
void sftp__disconnect(sftp_store *s);
/* Connected and alive (sends a keepalive when due), or connect. */
int sftp__ensure(sftp_store *s);
/* After a libssh2 call on s failed with rc: a DIMPLE code and a message
 * "what 'name': reason". Marks the session broken on a transport error. */
int sftp__fail(sftp_store *s, int rc, const char *what, const char *name);
/* The same for an SFTP status captured earlier (fx >= 0). */
int sftp__fail_status(sftp_store *s, long fx, const char *what,
                      const char *name);
/* The SFTP status of the last failed call (LIBSSH2_FX_*), or -1 when the
 * failure was not an SFTP status. */
long sftp__status(sftp_store *s, int rc);
/* posix-rename@openssh.com over the extension channel: atomic replace.
 * DIMPLE_OK, a negative code, or 1 when the server does not offer it. */
int sftp__posix_rename(sftp_store *s, const char *from, const char *to);
/* SHA256 fingerprint in OpenSSH's format ("SHA256:" + unpadded base64). */
void sftp__fingerprint(const unsigned char *hash32, char out[64]);

/* ---- sftp_ops.c */
int sftp__put(sftp_store *s, const char *key, const void *data, size_t len,
              int exclusive);
int sftp__get(sftp_store *s, const char *key, const dimple_sink *out);
int sftp__list(sftp_store *s, const char *prefix, const char *start_after,
               unsigned flags, dimple_list_cb cb, void *payload);
int sftp__remove(sftp_store *s, const char *key);
/* 1 if key is acceptable for this plugin (dimple_key_valid + own rules). */
int sftp__key_ok(const char *key);

#endif /* DIMPLE_SFTP_INT_H */
