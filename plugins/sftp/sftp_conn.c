/*
 * sftp_conn.c — the SSH side of the SFTP plugin: TCP connect with a
 * timeout, SSH handshake with the host-key type pinned to what known_hosts
 * holds, host-key verification (strict / accept-new / off), authentication
 * (key file, password, ssh-agent), keepalive, and a second raw SFTP channel
 * for posix-rename@openssh.com, which libssh2 1.10 has no call for.
 */
#include "sftp_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* The host-key algorithms libssh2 1.10 can verify, best first. Used as
 * the preference when known_hosts has nothing for the host (accept-new,
 * off, or the refusal message of strict). */
#define SFTP_HOSTKEY_ALL                                                       \
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"                     \
    "ecdsa-sha2-nistp521,ssh-rsa,ssh-dss"

/* Bits for the host-key types found in known_hosts. */
enum {
    KT_ED25519 = 1,
    KT_ECDSA256 = 2,
    KT_ECDSA384 = 4,
    KT_ECDSA521 = 8,
    KT_RSA = 16,
    KT_DSS = 32,
    KT_OTHER = 64 /* a type libssh2 cannot verify (sk-*, certificates) */
};

static const struct {
    int bit;
    const char *name;
} kt_names[] = {
    {KT_ED25519, "ssh-ed25519"},
    {KT_ECDSA256, "ecdsa-sha2-nistp256"},
    {KT_ECDSA384, "ecdsa-sha2-nistp384"},
    {KT_ECDSA521, "ecdsa-sha2-nistp521"},
    {KT_RSA, "ssh-rsa"},
    {KT_DSS, "ssh-dss"},
};

static pthread_once_t sftp_once = PTHREAD_ONCE_INIT;

static void sftp_init_once(void)
{
    /* libssh2_init is not thread-safe; once per process. Never undone:
     * another instance may still use the library. */
    libssh2_init(0);
}

void sftp__global_init(void)
{
    pthread_once(&sftp_once, sftp_init_once);
}

/* ------------------------------------------------------------- base64 */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Unpadded base64 of n bytes into out (room for 4*ceil(n/3)+1). */
static void b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v =
            (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
        out[o++] = b64chars[v >> 6 & 63];
        out[o++] = b64chars[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
        out[o++] = b64chars[v >> 6 & 63];
    }
    out[o] = '\0';
}

/* Decode base64 (padding optional) of len chars; -1 if malformed or
 * longer than cap. */
static int b64_decode(const char *in, size_t len, unsigned char *out,
                      size_t cap)
{
    unsigned v = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p;
        if (in[i] == '=')
            break;
        p = strchr(b64chars, in[i]);
        if (!p || !in[i])
            return -1;
        v = v << 6 | (unsigned)(p - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(v >> bits & 0xff);
        }
    }
    return (int)o;
}

void sftp__fingerprint(const unsigned char *hash32, char out[64])
{
    memcpy(out, "SHA256:", 7);
    b64_encode(hash32, 32, out + 7);
}

/* ------------------------------------------------------------ helpers */

/* libssh2's last message for the session ("" if none). */
static const char *ssh_msg(sftp_store *s)
{
    char *m = NULL;
    int len = 0;
    if (!s->session)
        return "";
    libssh2_session_last_error(s->session, &m, &len, 0);
    return m ? m : "";
}

static const char *fx_text(unsigned long fx)
{
    switch (fx) {
    case LIBSSH2_FX_EOF:
        return "end of file";
    case LIBSSH2_FX_NO_SUCH_FILE:
        return "no such file";
    case LIBSSH2_FX_PERMISSION_DENIED:
        return "permission denied";
    case LIBSSH2_FX_FAILURE:
        return "failure";
    case LIBSSH2_FX_BAD_MESSAGE:
        return "bad message";
    case LIBSSH2_FX_OP_UNSUPPORTED:
        return "operation unsupported";
    case LIBSSH2_FX_NO_SUCH_PATH:
        return "no such path";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return "file already exists";
    case LIBSSH2_FX_WRITE_PROTECT:
        return "write protected";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
        return "no space left on the server";
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return "quota exceeded";
    case LIBSSH2_FX_DIR_NOT_EMPTY:
        return "folder not empty";
    case LIBSSH2_FX_NOT_A_DIRECTORY:
        return "not a folder";
    case LIBSSH2_FX_INVALID_FILENAME:
        return "invalid file name";
    default:
        return "error";
    }
}

long sftp__status(sftp_store *s, int rc)
{
    if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL || !s->sftp)
        return -1;
    return (long)libssh2_sftp_last_error(s->sftp);
}

int sftp__fail_status(sftp_store *s, long fx, const char *what,
                      const char *name)
{
    int code = DIMPLE_ERROR;
    if (fx == (long)LIBSSH2_FX_NO_SUCH_FILE ||
        fx == (long)LIBSSH2_FX_NO_SUCH_PATH)
        code = DIMPLE_ENOTFOUND;
    else if (fx == (long)LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM ||
             fx == (long)LIBSSH2_FX_QUOTA_EXCEEDED)
        code = DIMPLE_EIO;
    return sftp__err(s, code, "%s '%s': %s (SFTP status %ld)", what, name,
                     fx_text((unsigned long)fx), fx);
}

int sftp__fail(sftp_store *s, int rc, const char *what, const char *name)
{
    long fx = sftp__status(s, rc);
    if (fx >= 0)
        return sftp__fail_status(s, fx, what, name);
    /* Anything else happened below SFTP (socket, timeout, channel, SSH
     * protocol): this session cannot be trusted any more. Shut the socket
     * so the cleanup that follows (closing handles) fails at once instead
     * of waiting out another timeout. */
    s->broken = 1;
    if (s->sock >= 0)
        shutdown(s->sock, SHUT_RDWR);
    if (rc == LIBSSH2_ERROR_ALLOC)
        return sftp__err(s, DIMPLE_ENOMEM, "%s '%s': out of memory", what,
                         name);
    if (rc == LIBSSH2_ERROR_TIMEOUT)
        return sftp__err(
            s, DIMPLE_EIO,
            "%s '%s': no answer from the server within %ld s (timeout)", what,
            name, s->timeout_ms / 1000);
    return sftp__err(s, DIMPLE_EIO,
                     "%s '%s': connection failed: %s (libssh2 %d)", what, name,
                     ssh_msg(s), rc);
}

/* ---------------------------------------------------------------- TCP */

static int tcp_connect(sftp_store *s)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int fd = -1, err = 0, gai, one = 1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", s->port);
    gai = getaddrinfo(s->hostname, port, &hints, &res);
    if (gai != 0)
        return sftp__err(s, DIMPLE_EIO, "cannot resolve the host: %s",
                         gai_strerror(gai));
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            do
                r = poll(&p, 1, (int)s->timeout_ms);
            while (r < 0 && errno == EINTR);
            if (r == 1) {
                socklen_t l = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                    err = errno;
                if (err == 0)
                    break;
            } else {
                err = r == 0 ? ETIMEDOUT : errno;
            }
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return sftp__err(s, DIMPLE_EIO, "cannot connect: %s", strerror(err));
    /* libssh2 (blocking mode) waits on the socket itself, with the
     * session timeout; the kernel's keepalive finds a peer that vanished
     * while we were idle. */
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#ifdef TCP_KEEPIDLE
    {
        int idle = 60, intvl = 10, cnt = 3;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
#endif
    s->sock = fd;
    return DIMPLE_OK;
}

/* ------------------------------------------------------- known_hosts */

static int kt_bit_of(const char *type, size_t n)
{
    for (size_t i = 0; i < sizeof kt_names / sizeof kt_names[0]; i++)
        if (strlen(kt_names[i].name) == n &&
            memcmp(kt_names[i].name, type, n) == 0)
            return kt_names[i].bit;
    return KT_OTHER;
}

/* Does one host pattern of a known_hosts line name this host? Plain names
 * compare without case; hashed ones (|1|salt|hash) are HMAC-SHA1 of the
 * name. Like libssh2, "[host]:port" and the plain host both count. */
static int kh_pattern_matches(sftp_store *s, const char *pat, size_t n)
{
    char cand[2][300];
    snprintf(cand[0], sizeof cand[0], "[%s]:%d", s->khname, s->port);
    snprintf(cand[1], sizeof cand[1], "%s", s->khname);
    if (n > 3 && memcmp(pat, "|1|", 3) == 0) {
        const char *salt = pat + 3, *bar = memchr(salt, '|', n - 3);
        unsigned char sb[64], hb[64], mac[EVP_MAX_MD_SIZE];
        unsigned maclen = 0;
        int sl, hl;
        if (!bar)
            return 0;
        sl = b64_decode(salt, (size_t)(bar - salt), sb, sizeof sb);
        hl = b64_decode(bar + 1, n - (size_t)(bar + 1 - pat), hb, sizeof hb);
        if (sl <= 0 || hl != 20)
            return 0;
        for (int i = 0; i < 2; i++) {
            if (!HMAC(EVP_sha1(), sb, sl, (const unsigned char *)cand[i],
                      strlen(cand[i]), mac, &maclen))
                return 0;
            if (maclen == 20 && memcmp(mac, hb, 20) == 0)
                return 1;
        }
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if (strlen(cand[i]) == n && strncasecmp(cand[i], pat, n) == 0)
            return 1;
    return 0;
}

/*
 * Read the known_hosts file: every line libssh2 can parse goes into kh;
 * *types gets the key types recorded for this host. Returns the number of
 * lines for this host (0 if the file does not exist) or a negative code.
 * Lines with markers (@cert-authority, @revoked) and wildcard patterns are
 * not supported by libssh2's matcher and are skipped: they never make an
 * unknown key acceptable.
 */
static int kh_load(sftp_store *s, LIBSSH2_KNOWNHOSTS *kh, int *types)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int count = 0, lineno = 0;

    *types = 0;
    f = fopen(s->known_hosts, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return sftp__err(s, DIMPLE_ECONFIG, "known_hosts %s: %s",
                         s->known_hosts, strerror(errno));
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *p = line, *end;
        int neg = 0, pos = 0;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '@')
            continue;
        end = p + strcspn(p, " \t");
        if (!*end)
            continue;
        /* host patterns: comma separated, "!pat" negates */
        for (char *q = p; q < end;) {
            char *c = memchr(q, ',', (size_t)(end - q));
            size_t n = c ? (size_t)(c - q) : (size_t)(end - q);
            if (n > 1 && *q == '!') {
                if (kh_pattern_matches(s, q + 1, n - 1))
                    neg = 1;
            } else if (n > 0 && kh_pattern_matches(s, q, n)) {
                pos = 1;
            }
            q += n + 1;
        }
        if (pos && !neg) {
            char *t = end + strspn(end, " \t");
            count++;
            *types |= kt_bit_of(t, strcspn(t, " \t"));
        }
        if (libssh2_knownhost_readline(kh, p, strlen(p),
                                       LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
            dimple_logf(s->host, DIMPLE_LOG_DEBUG,
                        "%s: known_hosts %s:%d: line not understood by "
                        "libssh2, skipped",
                        s->where, s->known_hosts, lineno);
    }
    free(line);
    fclose(f);
    return count;
}

static int hostkey_bits(int type, int *kt)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        *kt = KT_ED25519;
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        *kt = KT_ECDSA256;
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        *kt = KT_ECDSA384;
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        *kt = KT_ECDSA521;
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        *kt = KT_RSA;
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        *kt = KT_DSS;
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    default:
        *kt = KT_OTHER;
        return 0;
    }
}

static const char *kt_name(int kt)
{
    for (size_t i = 0; i < sizeof kt_names / sizeof kt_names[0]; i++)
        if (kt_names[i].bit == kt)
            return kt_names[i].name;
    return "unknown";
}

/* The known_hosts name of the server, as OpenSSH writes it. */
static void kh_name(sftp_store *s, char *out, size_t n)
{
    if (s->port == 22)
        snprintf(out, n, "%s", s->khname);
    else
        snprintf(out, n, "[%s]:%d", s->khname, s->port);
}

/* accept-new: append the server's key to known_hosts (created 0600). */
static int kh_append(sftp_store *s, LIBSSH2_KNOWNHOSTS *kh, const char *key,
                     size_t klen, int kbits, int kt, const char *fp)
{
    struct libssh2_knownhost *node = NULL;
    char name[320], buf[4096];
    size_t outlen = 0;
    int fd, rc = DIMPLE_OK;
    struct stat st;

    kh_name(s, name, sizeof name);
    if (libssh2_knownhost_addc(kh, name, NULL, key, klen, NULL, 0,
                               LIBSSH2_KNOWNHOST_TYPE_PLAIN |
                                   LIBSSH2_KNOWNHOST_KEYENC_RAW | kbits,
                               &node) != 0 ||
        libssh2_knownhost_writeline(kh, node, buf, sizeof buf, &outlen,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
        return sftp__err(s, DIMPLE_ERROR,
                         "cannot format the host key for %s: %s",
                         s->known_hosts, ssh_msg(s));
    fd = open(s->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        /* ~/.ssh itself may not exist yet: make it as ssh would (0700). */
        char *dir = strdup(s->known_hosts),
             *sl = dir ? strrchr(dir, '/') : NULL;
        if (sl && sl != dir) {
            *sl = '\0';
            (void)mkdir(dir, 0700);
        }
        free(dir);
        fd = open(s->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0600);
    }
    if (fd < 0)
        return sftp__err(s, DIMPLE_ECONFIG,
                         "host_key_check = accept-new: cannot write %s: %s",
                         s->known_hosts, strerror(errno));
    /* Keep lines whole if the file does not end with a newline. */
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        char last = '\n';
        if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' &&
            write(fd, "\n", 1) != 1)
            rc = DIMPLE_EIO;
    }
    if (rc == DIMPLE_OK &&
        (write(fd, buf, outlen) != (ssize_t)outlen || fsync(fd) != 0))
        rc = DIMPLE_EIO;
    if (close(fd) != 0)
        rc = DIMPLE_EIO;
    if (rc < 0)
        return sftp__err(s, rc,
                         "host_key_check = accept-new: cannot write %s: %s",
                         s->known_hosts, strerror(errno));
    dimple_logf(
        s->host, DIMPLE_LOG_WARN,
        "%s: new host key %s %s added to %s (host_key_check = accept-new)",
        s->where, kt_name(kt), fp, s->known_hosts);
    return DIMPLE_OK;
}

static int check_host_key(sftp_store *s, LIBSSH2_KNOWNHOSTS *kh, int entries)
{
    size_t klen = 0;
    int ktype = 0, kt, kbits, r;
    const char *key = libssh2_session_hostkey(s->session, &klen, &ktype);
    const char *hash =
        libssh2_hostkey_hash(s->session, LIBSSH2_HOSTKEY_HASH_SHA256);
    struct libssh2_knownhost *found = NULL;
    char fp[64], name[320];

    if (!key || !hash)
        return sftp__err(s, DIMPLE_EIO, "the server sent no usable host key");
    sftp__fingerprint((const unsigned char *)hash, fp);
    kbits = hostkey_bits(ktype, &kt);
    kh_name(s, name, sizeof name);
    if (s->hostkey_check == SFTP_HKC_OFF) {
        dimple_logf(s->host, DIMPLE_LOG_WARN,
                    "%s: host key NOT verified (host_key_check = off): %s %s",
                    s->where, kt_name(kt), fp);
        return DIMPLE_OK;
    }
    r = libssh2_knownhost_checkp(kh, s->khname, s->port, key, klen,
                                 LIBSSH2_KNOWNHOST_TYPE_PLAIN |
                                     LIBSSH2_KNOWNHOST_KEYENC_RAW | kbits,
                                 &found);
    switch (r) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        return DIMPLE_OK;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        return sftp__err(
            s, DIMPLE_EAUTH,
            "host key mismatch: the server sent %s key %s, but %s holds "
            "another %s key for %s; refusing to connect (someone may be "
            "intercepting the connection; if the server's key really "
            "changed, remove the old line with: ssh-keygen -R '%s' -f %s)",
            kt_name(kt), fp, s->known_hosts, kt_name(kt), name, name,
            s->known_hosts);
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        if (entries == 0 && s->hostkey_check == SFTP_HKC_ACCEPT_NEW && kbits)
            return kh_append(s, kh, key, klen, kbits, kt, fp);
        if (entries > 0)
            return sftp__err(
                s, DIMPLE_EAUTH,
                "host key not verified: %s lists %s, but not with the "
                "%s key %s the server sent; refusing to connect",
                s->known_hosts, name, kt_name(kt), fp);
        return sftp__err(
            s, DIMPLE_EAUTH,
            "unknown host: %s is not in %s; the server sent %s key %s. "
            "Check that fingerprint with the server's administrator, then "
            "add it (ssh-keyscan -p %d %s >> %s) or set host_key_check = "
            "accept-new",
            name, s->known_hosts, kt_name(kt), fp, s->port, s->hostname,
            s->known_hosts);
    default:
        return sftp__err(s, DIMPLE_EAUTH, "cannot check the host key %s %s: %s",
                         kt_name(kt), fp, ssh_msg(s));
    }
}

/* ------------------------------------------------------ authentication */

static int auth_agent(sftp_store *s, const char *offered)
{
    LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
    struct libssh2_agent_publickey *id = NULL, *prev = NULL;
    int tried = 0, rc = DIMPLE_EAUTH, r;
    const char *sock = getenv("SSH_AUTH_SOCK");

    if (!agent)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    if (!sock || !*sock || libssh2_agent_connect(agent) != 0) {
        rc = sftp__err(
            s, DIMPLE_EAUTH,
            "no key_file or password is configured, and ssh-agent is not "
            "reachable (%s)",
            sock && *sock ? "SSH_AUTH_SOCK does not answer"
                          : "SSH_AUTH_SOCK is unset");
        goto out;
    }
    if (libssh2_agent_list_identities(agent) != 0) {
        rc = sftp__err(s, DIMPLE_EAUTH, "ssh-agent: cannot list its keys: %s",
                       ssh_msg(s));
        goto out;
    }
    while ((r = libssh2_agent_get_identity(agent, &id, prev)) == 0) {
        tried++;
        if (libssh2_agent_userauth(agent, s->user, id) == 0) {
            rc = DIMPLE_OK;
            break;
        }
        if (libssh2_session_last_errno(s->session) !=
                LIBSSH2_ERROR_AUTHENTICATION_FAILED &&
            libssh2_session_last_errno(s->session) !=
                LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED &&
            libssh2_session_last_errno(s->session) !=
                LIBSSH2_ERROR_AGENT_PROTOCOL) {
            s->broken = 1;
            rc = sftp__err(s, DIMPLE_EIO, "ssh-agent authentication: %s",
                           ssh_msg(s));
            break;
        }
        prev = id;
    }
    if (rc == DIMPLE_EAUTH)
        rc = sftp__err(
            s, DIMPLE_EAUTH,
            "authentication refused: ssh-agent offered %d key(s) for user "
            "'%s' and the server accepted none (server offers: %s)",
            tried, s->user, offered);
    libssh2_agent_disconnect(agent);
out:
    libssh2_agent_free(agent);
    return rc;
}

/* Was rc a refusal (wrong credentials) rather than a transport failure? */
static int auth_refused(int rc)
{
    return rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
           rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
           rc == LIBSSH2_ERROR_PASSWORD_EXPIRED || rc == LIBSSH2_ERROR_FILE ||
           rc == LIBSSH2_ERROR_METHOD_NONE ||
           rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED;
}

static int authenticate(sftp_store *s)
{
    unsigned ulen = (unsigned)strlen(s->user);
    char offered[256];
    const char *list;
    char keymsg[512] = "";
    int rc;

    list = libssh2_userauth_list(s->session, s->user, ulen);
    if (!list) {
        if (libssh2_userauth_authenticated(s->session))
            return DIMPLE_OK; /* "none" was enough */
        s->broken = 1;
        return sftp__err(s, DIMPLE_EIO, "authentication: %s", ssh_msg(s));
    }
    snprintf(offered, sizeof offered, "%s", list);

    if (s->key_file) {
        if (access(s->key_file, R_OK) != 0)
            return sftp__err(s, DIMPLE_ECONFIG, "key_file %s: %s", s->key_file,
                             strerror(errno));
        if (!strstr(offered, "publickey")) {
            snprintf(keymsg, sizeof keymsg,
                     "the server does not accept keys (it offers: %s)",
                     offered);
        } else {
            rc = libssh2_userauth_publickey_fromfile_ex(s->session, s->user,
                                                        ulen, NULL, s->key_file,
                                                        s->key_passphrase);
            if (rc == 0)
                return DIMPLE_OK;
            if (!auth_refused(rc)) {
                s->broken = 1;
                return sftp__err(s, DIMPLE_EIO, "key authentication: %s",
                                 ssh_msg(s));
            }
            if (rc == LIBSSH2_ERROR_FILE ||
                rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED)
                snprintf(keymsg, sizeof keymsg,
                         "cannot use key_file %s: %s; libssh2 1.10 reads "
                         "ed25519 and "
                         "ECDSA private keys",
                         s->key_file,
                         s->key_passphrase
                             ? "it could not be decrypted (wrong "
                               "key_passphrase?) or parsed"
                             : "it could not be parsed (an encrypted key needs "
                               "key_passphrase)");
            else
                snprintf(keymsg, sizeof keymsg,
                         "the server refused key_file %s for user '%s'",
                         s->key_file, s->user);
        }
        if (!s->password)
            return sftp__err(s, DIMPLE_EAUTH, "authentication refused: %s",
                             keymsg);
    }
    if (s->password) {
        if (!strstr(offered, "password"))
            return sftp__err(
                s, DIMPLE_EAUTH,
                "authentication refused: %s%sthe server does not accept "
                "passwords (it offers: %s)",
                keymsg, *keymsg ? "; " : "", offered);
        rc =
            libssh2_userauth_password_ex(s->session, s->user, ulen, s->password,
                                         (unsigned)strlen(s->password), NULL);
        if (rc == 0)
            return DIMPLE_OK;
        if (!auth_refused(rc)) {
            s->broken = 1;
            return sftp__err(s, DIMPLE_EIO, "password authentication: %s",
                             ssh_msg(s));
        }
        return sftp__err(
            s, DIMPLE_EAUTH,
            "authentication refused: %s%swrong password for user '%s'%s",
            keymsg, *keymsg ? "; " : "", s->user,
            rc == LIBSSH2_ERROR_PASSWORD_EXPIRED ? " (password expired)" : "");
    }
    return auth_agent(s, offered);
}

/* ----------------------------------------------------- the connection */

int sftp__connect(sftp_store *s)
{
    LIBSSH2_KNOWNHOSTS *kh = NULL;
    int rc, entries = 0, types = 0;
    char methods[256] = "";

    if (s->session)
        sftp__disconnect(s);
    s->broken = 0;
    rc = tcp_connect(s);
    if (rc < 0)
        return rc;
    s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
    if (!s->session) {
        rc = sftp__err(s, DIMPLE_ENOMEM, "cannot start an SSH session");
        goto fail;
    }
    libssh2_session_set_blocking(s->session, 1);
    libssh2_session_set_timeout(s->session, s->timeout_ms);

    if (s->hostkey_check != SFTP_HKC_OFF) {
        kh = libssh2_knownhost_init(s->session);
        if (!kh) {
            rc = sftp__err(s, DIMPLE_ENOMEM, "out of memory");
            goto fail;
        }
        entries = kh_load(s, kh, &types);
        if (entries < 0) {
            rc = entries;
            goto fail;
        }
    }
    /* Pin the host-key algorithm to the types known_hosts holds for this
     * host: otherwise the server may pick another type it also has (OpenSSH
     * offers ECDSA before ed25519 to libssh2) and a known host looks
     * unknown. */
    if (entries > 0) {
        for (size_t i = 0; i < sizeof kt_names / sizeof kt_names[0]; i++) {
            if (!(types & kt_names[i].bit))
                continue;
            if (*methods)
                strcat(methods, ",");
            strcat(methods, kt_names[i].name);
        }
        if (!*methods) {
            rc = sftp__err(
                s, DIMPLE_EAUTH,
                "%s holds only host key types libssh2 cannot verify for this "
                "host (certificates or security keys); add its ed25519 or "
                "ECDSA key",
                s->known_hosts);
            goto fail;
        }
    } else {
        strcpy(methods, SFTP_HOSTKEY_ALL);
    }
    if (libssh2_session_method_pref(s->session, LIBSSH2_METHOD_HOSTKEY,
                                    methods) != 0) {
        rc = sftp__err(s, DIMPLE_EAUTH,
                       "libssh2 supports none of the host key types %s",
                       methods);
        goto fail;
    }

    rc = libssh2_session_handshake(s->session, s->sock);
    if (rc != 0) {
        int kex = rc == LIBSSH2_ERROR_KEX_FAILURE ||
                  rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED ||
                  rc == LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE;
        if (rc == LIBSSH2_ERROR_TIMEOUT)
            rc = sftp__err(s, DIMPLE_EIO,
                           "SSH handshake: no answer within %ld s (timeout)",
                           s->timeout_ms / 1000);
        else if (kex && entries > 0)
            rc = sftp__err(
                s, DIMPLE_EAUTH,
                "SSH handshake failed: %s; the host key types %s holds for "
                "this host are %s, and the server offers none of them",
                ssh_msg(s), s->known_hosts, methods);
        else
            rc = sftp__err(s, DIMPLE_EIO,
                           "SSH handshake failed: %s (libssh2 %d)", ssh_msg(s),
                           rc);
        s->broken = 1;
        goto fail;
    }
    rc = check_host_key(s, kh, entries);
    if (rc < 0)
        goto fail;
    if (kh) {
        libssh2_knownhost_free(kh);
        kh = NULL;
    }

    rc = authenticate(s);
    if (rc < 0)
        goto fail;

    /* Keepalives go out with the next call after this many idle seconds;
     * the server's answer proves the connection is still there. */
    libssh2_keepalive_config(s->session, 1,
                             (unsigned)(s->timeout_ms / 2000 > 15 ? 15
                                        : s->timeout_ms / 2000 < 2
                                            ? 2
                                            : s->timeout_ms / 2000));

    s->sftp = libssh2_sftp_init(s->session);
    if (!s->sftp) {
        rc = libssh2_session_last_errno(s->session);
        if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_SEND ||
            rc == LIBSSH2_ERROR_SOCKET_RECV ||
            rc == LIBSSH2_ERROR_SOCKET_DISCONNECT)
            s->broken = 1;
        rc = sftp__err(s, DIMPLE_EIO, "the server has no SFTP service: %s",
                       ssh_msg(s));
        goto fail;
    }
    s->connects++;
    dimple_logf(s->host, DIMPLE_LOG_DEBUG, "%s: connected (connection %u)",
                s->where, s->connects);
    return DIMPLE_OK;

fail:
    if (kh)
        libssh2_knownhost_free(kh);
    /* A failed connect leaves nothing behind; a polite goodbye only when
     * the transport still works. */
    sftp__disconnect(s);
    return rc;
}

void sftp__disconnect(sftp_store *s)
{
    if (s->broken && s->sock >= 0)
        shutdown(s->sock, SHUT_RDWR); /* every later libssh2 call fails fast */
    if (s->ext)
        libssh2_channel_free(s->ext);
    if (s->sftp)
        libssh2_sftp_shutdown(s->sftp);
    if (s->session) {
        if (!s->broken)
            libssh2_session_disconnect(s->session, "closed");
        libssh2_session_free(s->session);
    }
    if (s->sock >= 0)
        close(s->sock);
    s->ext = NULL;
    s->sftp = NULL;
    s->session = NULL;
    s->sock = -1;
    s->ext_state = 0;
    s->has_posix_rename = 0;
    s->fsync_state = 0;
    s->told_no_rename = 0;
    s->broken = 0;
}

int sftp__ensure(sftp_store *s)
{
    if (s->session && s->sftp && !s->broken) {
        int next = 0;
        if (libssh2_keepalive_send(s->session, &next) == 0)
            return DIMPLE_OK;
        s->broken = 1;
        dimple_logf(s->host, DIMPLE_LOG_INFO,
                    "%s: connection lost (%s); reconnecting", s->where,
                    ssh_msg(s));
    }
    return sftp__connect(s);
}

/* ------------------------------------------- raw SFTP extension channel */

#define SSH_FXP_INIT 1
#define SSH_FXP_VERSION 2
#define SSH_FXP_STATUS 101
#define SSH_FXP_EXTENDED 200
#define EXT_PACKET_MAX (256u * 1024)

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Transport failure on the extension channel: the session is broken. */
static int ext_fail(sftp_store *s, ssize_t rc, const char *what)
{
    s->broken = 1;
    if (s->sock >= 0)
        shutdown(s->sock, SHUT_RDWR);
    if (rc == LIBSSH2_ERROR_TIMEOUT)
        return sftp__err(s, DIMPLE_EIO, "%s: no answer within %ld s (timeout)",
                         what, s->timeout_ms / 1000);
    return sftp__err(s, DIMPLE_EIO, "%s: connection failed: %s (libssh2 %d)",
                     what, rc == 0 ? "channel closed" : ssh_msg(s), (int)rc);
}

static int ext_write(sftp_store *s, const unsigned char *p, size_t n,
                     const char *what)
{
    while (n > 0) {
        ssize_t w = libssh2_channel_write(s->ext, (const char *)p, n);
        if (w <= 0)
            return ext_fail(s, w, what);
        p += w;
        n -= (size_t)w;
    }
    return DIMPLE_OK;
}

static int ext_read_full(sftp_store *s, unsigned char *p, size_t n,
                         const char *what)
{
    while (n > 0) {
        ssize_t r = libssh2_channel_read(s->ext, (char *)p, n);
        if (r <= 0)
            return ext_fail(s, r, what);
        p += r;
        n -= (size_t)r;
    }
    return DIMPLE_OK;
}

/* One SFTP packet (type byte + payload) into a malloc'd buffer. */
static int ext_read_packet(sftp_store *s, unsigned char **out, uint32_t *len,
                           const char *what)
{
    unsigned char hdr[4];
    uint32_t n;
    int rc = ext_read_full(s, hdr, 4, what);
    *out = NULL;
    if (rc < 0)
        return rc;
    n = get32(hdr);
    if (n < 1 || n > EXT_PACKET_MAX) {
        s->broken = 1;
        return sftp__err(s, DIMPLE_EIO, "%s: malformed SFTP packet (length %u)",
                         what, n);
    }
    *out = malloc(n);
    if (!*out)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    rc = ext_read_full(s, *out, n, what);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        return rc;
    }
    *len = n;
    return DIMPLE_OK;
}

/* Open the channel and read the server's extension list. DIMPLE_OK, or 1
 * when the server refuses a second SFTP channel (then: no extensions). */
static int ext_open(sftp_store *s)
{
    static const unsigned char init[9] = {0, 0, 0, 5, SSH_FXP_INIT, 0, 0, 0, 3};
    unsigned char *pkt = NULL;
    uint32_t len = 0, off;
    int rc;

    s->ext = libssh2_channel_open_session(s->session);
    if (!s->ext) {
        int e = libssh2_session_last_errno(s->session);
        if (e == LIBSSH2_ERROR_CHANNEL_FAILURE ||
            e == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED) {
            s->ext_state = -1;
            return 1;
        }
        return ext_fail(s, e, "opening a second SFTP channel");
    }
    rc = libssh2_channel_subsystem(s->ext, "sftp");
    if (rc != 0) {
        if (rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED ||
            rc == LIBSSH2_ERROR_CHANNEL_FAILURE) {
            libssh2_channel_free(s->ext);
            s->ext = NULL;
            s->ext_state = -1;
            return 1;
        }
        return ext_fail(s, rc, "starting a second SFTP channel");
    }
    rc = ext_write(s, init, sizeof init, "SFTP init");
    if (rc < 0)
        return rc;
    rc = ext_read_packet(s, &pkt, &len, "SFTP init");
    if (rc < 0)
        return rc;
    if (len < 5 || pkt[0] != SSH_FXP_VERSION) {
        free(pkt);
        s->broken = 1;
        return sftp__err(s, DIMPLE_EIO,
                         "SFTP init: unexpected answer (type %u)",
                         len ? pkt[0] : 0);
    }
    /* extension pairs: string name, string data */
    for (off = 5; off + 4 <= len;) {
        uint32_t nl = get32(pkt + off), dl;
        if (nl > len - off - 4)
            break;
        if (nl == 24 &&
            memcmp(pkt + off + 4, "posix-rename@openssh.com", 24) == 0)
            s->has_posix_rename = 1;
        off += 4 + nl;
        if (off + 4 > len)
            break;
        dl = get32(pkt + off);
        if (dl > len - off - 4)
            break;
        off += 4 + dl;
    }
    free(pkt);
    s->ext_state = 1;
    return DIMPLE_OK;
}

int sftp__posix_rename(sftp_store *s, const char *from, const char *to)
{
    static const char name[] = "posix-rename@openssh.com";
    size_t fl = strlen(from), tl = strlen(to), nl = sizeof name - 1;
    size_t n = 4 + 1 + 4 + 4 + nl + 4 + fl + 4 + tl;
    unsigned char *pkt, *ans = NULL;
    uint32_t id, alen = 0, code;
    int rc;

    if (s->ext_state < 0)
        return 1;
    if (s->ext_state == 0) {
        rc = ext_open(s);
        if (rc != DIMPLE_OK)
            return rc;
    }
    if (!s->has_posix_rename)
        return 1;
    if (n > EXT_PACKET_MAX)
        return sftp__err(s, DIMPLE_EINVAL, "rename '%s': path too long", to);
    pkt = malloc(n);
    if (!pkt)
        return sftp__err(s, DIMPLE_ENOMEM, "out of memory");
    id = ++s->ext_id;
    put32(pkt, (uint32_t)(n - 4));
    pkt[4] = SSH_FXP_EXTENDED;
    put32(pkt + 5, id);
    put32(pkt + 9, (uint32_t)nl);
    memcpy(pkt + 13, name, nl);
    put32(pkt + 13 + nl, (uint32_t)fl);
    memcpy(pkt + 17 + nl, from, fl);
    put32(pkt + 17 + nl + fl, (uint32_t)tl);
    memcpy(pkt + 21 + nl + fl, to, tl);
    rc = ext_write(s, pkt, n, "posix-rename");
    free(pkt);
    if (rc < 0)
        return rc;
    rc = ext_read_packet(s, &ans, &alen, "posix-rename");
    if (rc < 0)
        return rc;
    if (alen < 9 || ans[0] != SSH_FXP_STATUS || get32(ans + 1) != id) {
        free(ans);
        s->broken = 1;
        return sftp__err(s, DIMPLE_EIO,
                         "posix-rename: unexpected answer from the server");
    }
    code = get32(ans + 5);
    free(ans);
    if (code == LIBSSH2_FX_OK)
        return DIMPLE_OK;
    if (code == LIBSSH2_FX_OP_UNSUPPORTED ||
        code == LIBSSH2_FX_PERMISSION_DENIED) {
        /* Not offered after all, or refused by the server's policy
         * (sftp-server -P): fall back, and do not ask again. */
        s->has_posix_rename = 0;
        return 1;
    }
    return sftp__err(
        s, code == LIBSSH2_FX_NO_SUCH_FILE ? DIMPLE_ENOTFOUND : DIMPLE_ERROR,
        "rename to '%s': %s (SFTP status %u)", to, fx_text(code), code);
}
