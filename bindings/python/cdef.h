/*
 * The C API as the Python bindings see it: a curated copy of the public
 * headers, checked against them by the compiler (cffi API mode), so a
 * mismatch breaks the build instead of a user. `...;` lets structs grow.
 */

/* common.h */
int ib_init(void);
int ib_shutdown(void);

/* errors.h */
typedef enum {
	IB_OK = 0, IB_ERROR = -1, IB_ENOTFOUND = -3, IB_EEXISTS = -4, IB_EINVALID = -5,
	IB_ESYNTAX = -6, IB_EUNSUPPORTED = -7, IB_EUSER = -8
} ib_error_code;
typedef struct {
	int code;
	int layer;
	const char *message;
} ib_error;
const ib_error *ib_error_last(void);
void ib_error_clear(void);

/* buffer.h */
typedef struct {
	char *ptr;
	size_t size;
	...;
} ib_buf;
void ib_buf_dispose(ib_buf *buf);

/* digest.h */
#define IB_DIGEST_STRLEN ...
typedef struct {
	unsigned char bytes[32];
} ib_digest;
int ib_digest_parse(ib_digest *out, const char *str);
void ib_digest_fmt(char *out, const ib_digest *d);
int ib_digest_of(ib_digest *out, const void *data, size_t len);
int ib_digest_verify(const ib_digest *expected, const void *data, size_t len);

/* version.h */
void ib_version(int *major, int *minor, int *patch);
const char *ib_version_string(void);

/* common.h: progress reports */
typedef enum { IB_LOG_ERROR = 0, IB_LOG_WARNING = 1, IB_LOG_INFO = 2, IB_LOG_DEBUG = 3 } ib_log_level;
typedef enum {
	IB_PROGRESS_STEP = 0, IB_PROGRESS_STEP_DONE = 1, IB_PROGRESS_BYTES = 2, IB_PROGRESS_OUTPUT = 3
} ib_progress_kind;
typedef struct {
	unsigned int version;
	ib_progress_kind kind;
	const char *id;
	const char *text;
	uint64_t current;
	uint64_t total;
	int cached;
	...;
} ib_progress;
typedef int (*ib_progress_cb)(const ib_progress *progress, void *payload);
typedef void (*ib_log_cb)(ib_log_level level, const char *line, void *payload);
typedef struct {
	unsigned int version;
	ib_progress_cb progress;
	ib_log_cb log;
	void *payload;
	const volatile int *cancel;
	...;
} ib_callbacks;
#define IB_CALLBACKS_VERSION ...
int ib_callbacks_init(ib_callbacks *cb, unsigned int version);
extern "Python" int _ib_py_progress(const ib_progress *, void *);
extern "Python" void _ib_py_log(ib_log_level, const char *, void *);

/* parse.h */
typedef struct ib_dockerfile ib_dockerfile;
typedef struct {
	unsigned int version;
	const char *filename;
	...;
} ib_parse_options;
int ib_parse_options_init(ib_parse_options *opts, unsigned int version);
int ib_dockerfile_parse(ib_dockerfile **out, const char *buf, size_t len, const ib_parse_options *opts);
void ib_dockerfile_free(ib_dockerfile *df);
int ib_dockerfile_dump(ib_buf *out, const ib_dockerfile *df);

/* store.h */
typedef struct ib_store ib_store;
typedef struct ib_image ib_image;
typedef struct ib_image_config ib_image_config;
typedef struct {
	unsigned int version;
	...;
} ib_store_options;
#define IB_STORE_OPTIONS_VERSION ...
int ib_store_options_init(ib_store_options *opts, unsigned int version);
int ib_store_open(ib_store **out, const char *root, const ib_store_options *opts);
void ib_store_free(ib_store *store);
const char *ib_store_root(const ib_store *store);
int ib_image_config_new(ib_image_config **out);
void ib_image_config_free(ib_image_config *c);
typedef struct {
	unsigned int version;
	const char *name;
	const ib_image_config *config;
	const char *comment;
	int use_source_date_epoch;
	int64_t source_date_epoch;
	const ib_callbacks *callbacks;
	...;
} ib_import_options;
#define IB_IMPORT_OPTIONS_VERSION ...
int ib_import_options_init(ib_import_options *opts, unsigned int version);
int ib_store_import(ib_digest *image_id, ib_store *store, const char *path, const ib_import_options *opts);
int ib_store_tag(ib_store *store, const char *source, const char *target);
int ib_store_untag(ib_store *store, const char *name);
int ib_store_image_lookup(ib_image **out, ib_store *store, const char *name_or_id);
void ib_image_free(ib_image *img);
const ib_digest *ib_image_id(const ib_image *img);
int ib_image_inspect_json(ib_buf *out, const ib_image *img);
typedef struct ib_image_list ib_image_list;
typedef struct {
	const char *name;
	ib_digest id;
	ib_digest manifest;
	const char *created;
	uint64_t size;
	...;
} ib_image_summary;
int ib_store_images(ib_image_list **out, ib_store *store);
size_t ib_image_list_count(const ib_image_list *list);
const ib_image_summary *ib_image_list_get(const ib_image_list *list, size_t i);
void ib_image_list_free(ib_image_list *list);

/* execute.h */
typedef enum { IB_NETWORK_HOST = 0, IB_NETWORK_NONE = 1 } ib_network_mode;
typedef struct {
	int code;
	int signal;
} ib_exit_status;

/* build.h */
typedef struct {
	unsigned int version;
	const char *context;
	const char *dockerfile;
	const char *dockerfile_content;
	size_t dockerfile_len;
	const char *const *tags;
	const char *const *build_args;
	const char *target;
	int no_cache;
	const char *isolation;
	const char *snapshotter;
	const char *platform;
	ib_network_mode network;
	const ib_callbacks *callbacks;
	int pull;
	const char *const *secrets;
	const char *const *allow;
	int use_source_date_epoch;
	int64_t source_date_epoch;
	...;
} ib_build_options;
#define IB_PULL_ALWAYS ...
#define IB_PULL_NEVER ...
#define IB_BUILD_OPTIONS_VERSION ...
int ib_build_options_init(ib_build_options *opts, unsigned int version);
int ib_build(ib_digest *image_id, ib_store *store, const ib_build_options *opts);
int ib_build_plan_print(ib_buf *out, const ib_build_options *opts);
typedef struct ib_checks ib_checks;
typedef struct {
	const char *rule;
	const char *message;
	const char *url;
	int line;
	...;
} ib_check_warning;
int ib_build_check(ib_checks **out, const ib_build_options *opts);
void ib_checks_free(ib_checks *checks);
size_t ib_checks_count(const ib_checks *checks);
const ib_check_warning *ib_checks_warning(const ib_checks *checks, size_t i);
int ib_prune(size_t *freed_blobs, size_t *freed_snapshots, ib_store *store);

/* container.h */
typedef struct ib_container ib_container;
typedef struct {
	unsigned int version;
	const char *name;
	const char *snapshotter;
	const char *command;
	...;
} ib_container_options;
#define IB_CONTAINER_OPTIONS_VERSION ...
int ib_container_options_init(ib_container_options *opts, unsigned int version);
int ib_container_create(ib_container **out, ib_store *store, const char *image, const ib_container_options *opts);
int ib_container_open(ib_container **out, ib_store *store, const char *id_or_name);
void ib_container_free(ib_container *c);
const char *ib_container_id(const ib_container *c);
const char *ib_container_name(const ib_container *c);
typedef struct {
	unsigned int version;
	const char *const *argv;
	const char *const *entrypoint;
	const char *const *env;
	const char *user;
	const char *workdir;
	const char *hostname;
	ib_network_mode network;
	const char *isolation;
	int tty;
	int stdin_fd;
	int stdout_fd;
	int stderr_fd;
	const ib_callbacks *callbacks;
	...;
} ib_container_run_options;
#define IB_CONTAINER_RUN_OPTIONS_VERSION ...
int ib_container_run_options_init(ib_container_run_options *opts, unsigned int version);
int ib_container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *opts);
typedef struct {
	unsigned int version;
	const char *message;
	const char *author;
	const char *const *changes;
	const char *tag;
	int use_source_date_epoch;
	int64_t source_date_epoch;
	...;
} ib_commit_options;
#define IB_COMMIT_OPTIONS_VERSION ...
int ib_commit_options_init(ib_commit_options *opts, unsigned int version);
int ib_container_commit(ib_digest *image_id, ib_container *c, const ib_commit_options *opts);
int ib_commit_apply_change(ib_image_config *config, const char *change);
int ib_container_remove(ib_store *store, const char *id_or_name);

/* push.h */
typedef struct {
	unsigned int version;
	const char *username;
	const char *password;
	const char *docker_config;
	int insecure;
	const char *tls_ca_file;
	unsigned int attempts;
	...;
} ib_registry_options;
typedef struct {
	unsigned int version;
	const ib_registry_options *registry;
	unsigned int jobs;
	const ib_callbacks *callbacks;
	...;
} ib_pull_options;
typedef struct {
	unsigned int version;
	const ib_registry_options *registry;
	unsigned int jobs;
	const ib_callbacks *callbacks;
	...;
} ib_push_options;
int ib_registry_options_init(ib_registry_options *opts, unsigned int version);
int ib_pull_options_init(ib_pull_options *opts, unsigned int version);
int ib_push_options_init(ib_push_options *opts, unsigned int version);
#define IB_REGISTRY_OPTIONS_VERSION ...
#define IB_PULL_OPTIONS_VERSION ...
#define IB_PUSH_OPTIONS_VERSION ...
int ib_pull(ib_digest *image_id, ib_digest *manifest, ib_store *store, const char *ref, const ib_pull_options *opts);
int ib_push(ib_digest *manifest, ib_store *store, const char *local_name, const char *dest_ref, const ib_push_options *opts);

/* store.h: fsck */
int ib_store_fsck(ib_buf *report, ib_store *store);

/* _build.py's preamble: SIGINT cancels the main thread's long call */
int ibpy_sigint_begin(int *flag);
int ibpy_sigint_end(void);
