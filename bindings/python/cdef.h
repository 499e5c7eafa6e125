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

/* common.h: rootless */
int ib_rootless_enter(void);
int ib_rootless_active(void);

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
typedef struct ib_image_platform_list ib_image_platform_list;
typedef struct {
	const char *platform;
	ib_digest manifest;
	int available;
	ib_digest id;
	uint64_t size;
	uint64_t content_size;
	unsigned int containers;
	...;
} ib_image_platform;
int ib_store_image_platforms(ib_image_platform_list **out, ib_store *store, const ib_digest *manifest);
size_t ib_image_platform_list_count(const ib_image_platform_list *list);
const ib_image_platform *ib_image_platform_list_get(const ib_image_platform_list *list, size_t i);
void ib_image_platform_list_free(ib_image_platform_list *list);
const ib_digest *ib_image_index_digest(const ib_image *img);

/* execute.h */
typedef enum { IB_NETWORK_HOST = 0, IB_NETWORK_NONE = 1 } ib_network_mode;
typedef struct {
	int code;
	int signal;
} ib_exit_status;

/* push.h */
typedef struct {
	unsigned int version;
	const char *username;
	const char *password;
	const char *docker_config;
	int insecure;
	const char *tls_ca_file;
	unsigned int attempts;
	const char *auth_file;
	const char *registries_conf;
	...;
} ib_registry_options;
typedef struct {
	unsigned int version;
	const ib_registry_options *registry;
	unsigned int jobs;
	const ib_callbacks *callbacks;
	const char *platform;
	...;
} ib_pull_options;
typedef struct {
	unsigned int version;
	const ib_registry_options *registry;
	unsigned int jobs;
	const ib_callbacks *callbacks;
	const char *compression;
	int compression_level;
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
	const ib_registry_options *registry;
	const char *const *secrets;
	const char *const *allow;
	int use_source_date_epoch;
	int64_t source_date_epoch;
	const char *const *labels;
	const char *const *annotations;
	const char *const *build_contexts;
	const char *const *extra_hosts;
	const char *const *ulimits;
	int64_t shm_size;
	const char *const *no_cache_filter;
	unsigned int jobs;
	const char *const *cache_from;
	const char *const *cache_to;
	const char *const *platforms;
	const char *binfmt_misc;
	...;
} ib_build_options;
#define IB_PULL_MISSING ...
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

/* execute.h: extra mounts and resource limits of a container run */
typedef enum {
	IB_MOUNT_BIND = 0,
	IB_MOUNT_TMPFS = 1,
	IB_MOUNT_VOLUME = 2
} ib_mount_type;
typedef struct {
	ib_mount_type type;
	const char *source;
	const char *target;
	int readonly;
	const char *options;
	...;
} ib_mount;
typedef struct {
	const char *name;
	uint64_t soft;
	uint64_t hard;
	...;
} ib_rlimit;

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
	const ib_mount *mounts;
	size_t nmounts;
	const ib_rlimit *rlimits;
	size_t nrlimits;
	int readonly_rootfs;
	const char *const *cap_add;
	const char *const *cap_drop;
	int init;
	const char *init_path;
	...;
} ib_container_run_options;
#define IB_CONTAINER_RUN_OPTIONS_VERSION ...
int ib_container_run_options_init(ib_container_run_options *opts, unsigned int version);
int ib_container_run(ib_exit_status *out, ib_container *c, const ib_container_run_options *opts);
int ib_container_start(ib_container *c, const ib_container_run_options *opts);
int ib_container_running(ib_container *c);
int ib_container_wait(ib_exit_status *out, ib_container *c);
int ib_container_kill(ib_container *c, int sig);
int ib_container_stop(ib_exit_status *out, ib_container *c, int timeout);
int ib_container_logs(ib_container *c, int fd, int follow);
int ib_volume_create(ib_store *store, const char *name);
int ib_volume_remove(ib_store *store, const char *name);
int ib_volume_list(ib_buf *out, ib_store *store);
int ib_volume_path(ib_buf *out, ib_store *store, const char *name);
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

/* store.h: fsck */
int ib_store_fsck(ib_buf *report, ib_store *store);

/* build()'s output= (local, tar): a layer blob applied to a tree */
int ib_store_blob_open(int *fd_out, ib_store *store, const ib_digest *d);
typedef enum {
	IB_WHITEOUT_DELETE = 0,
	IB_WHITEOUT_OVERLAY = 1
} ib_whiteout_mode;
int ib_snapshot_apply_tar(int dir_fd, int tar_fd, ib_whiteout_mode mode, const char *label);

/* buffer.h */
typedef struct {
	char **strings;
	size_t count;
} ib_strarray;
void ib_strarray_dispose(ib_strarray *array);

/* store.h: references */
typedef struct ib_reference ib_reference;
int ib_reference_parse(ib_reference **out, const char *str);
void ib_reference_free(ib_reference *ref);
const char *ib_reference_domain(const ib_reference *ref);
const char *ib_reference_path(const ib_reference *ref);
const char *ib_reference_repository(const ib_reference *ref);
const char *ib_reference_tag(const ib_reference *ref);
int ib_reference_tag_given(const ib_reference *ref);
const ib_digest *ib_reference_digest(const ib_reference *ref);
const char *ib_reference_name(const ib_reference *ref);
const char *ib_reference_familiar(const ib_reference *ref);

/* store.h: images */
typedef struct {
	ib_digest digest;
	uint64_t size;
	const char *media_type;
	ib_digest diff_id;
	...;
} ib_layer;
const ib_digest *ib_image_manifest_digest(const ib_image *img);
const char *ib_image_manifest_media_type(const ib_image *img);
size_t ib_image_layer_count(const ib_image *img);
const ib_layer *ib_image_layer(const ib_image *img, size_t i);
size_t ib_image_name_count(const ib_image *img);
const char *ib_image_name(const ib_image *img, size_t i);
uint64_t ib_image_size(const ib_image *img);
typedef struct {
	unsigned int version;
	const char *created;
	const char *created_by;
	const char *author;
	const char *comment;
	int empty_layer;
	uint64_t size;
	int has_layer;
	ib_digest layer;
	...;
} ib_image_history_item;
#define IB_IMAGE_HISTORY_ITEM_VERSION ...
int ib_image_history_item_init(ib_image_history_item *item, unsigned int version);
size_t ib_image_history_count(const ib_image *img);
int ib_image_history_get(ib_image_history_item *out, const ib_image *img, size_t i);
#define IB_STORE_REMOVE_FORCE ...
int ib_store_image_remove(ib_store *store, const char *name_or_id, unsigned int flags, ib_buf *report);
int ib_store_import_fd(ib_digest *image_id, ib_store *store, int fd, const ib_import_options *opts);

/* store.h: save and load */
typedef enum { IB_ARCHIVE_OCI = 0, IB_ARCHIVE_OCI_ARCHIVE = 1, IB_ARCHIVE_DOCKER = 2 } ib_archive_format;
typedef struct {
	unsigned int version;
	ib_archive_format format;
	const char *ref_name;
	const ib_callbacks *callbacks;
	...;
} ib_save_options;
#define IB_SAVE_OPTIONS_VERSION ...
int ib_save_options_init(ib_save_options *opts, unsigned int version);
int ib_store_save(ib_store *store, const char *const *names, size_t n, const char *path, const ib_save_options *opts);
typedef struct {
	unsigned int version;
	const char *repository;
	const ib_callbacks *callbacks;
	...;
} ib_load_options;
#define IB_LOAD_OPTIONS_VERSION ...
int ib_load_options_init(ib_load_options *opts, unsigned int version);
int ib_store_load(ib_strarray *loaded, ib_store *store, const char *path, const ib_load_options *opts);

/* store.h: container records */
typedef struct {
	unsigned int version;
	const char *id;
	const char *name;
	ib_digest image_id;
	const char *image_name;
	const char *command;
	const char *state;
	const char *created;
	const char *extra_json;
	...;
} ib_container_record;
typedef struct ib_container_list ib_container_list;
int ib_store_container_list(ib_container_list **out, ib_store *store);
size_t ib_container_list_count(const ib_container_list *list);
const ib_container_record *ib_container_list_get(const ib_container_list *list, size_t i);
void ib_container_list_free(ib_container_list *list);
int ib_store_container_get(ib_container_record **out, ib_store *store, const char *id_or_name);
void ib_container_record_free(ib_container_record *rec);
const ib_digest *ib_container_image_id(const ib_container *c);

/* store.h: maintenance */
typedef struct {
	unsigned int version;
	int prune_dangling;
	int nowait;
	...;
} ib_store_gc_options;
#define IB_STORE_GC_OPTIONS_VERSION ...
int ib_store_gc_options_init(ib_store_gc_options *opts, unsigned int version);
typedef struct {
	unsigned int version;
	uint64_t blobs_removed;
	uint64_t bytes_freed;
	uint64_t images_removed;
	...;
} ib_store_gc_stats;
#define IB_STORE_GC_STATS_VERSION ...
int ib_store_gc_stats_init(ib_store_gc_stats *stats, unsigned int version);
int ib_store_gc(ib_store_gc_stats *stats, ib_store *store, const ib_store_gc_options *opts);
typedef struct {
	unsigned int version;
	int full;
	...;
} ib_store_fsck_options;
#define IB_STORE_FSCK_OPTIONS_VERSION ...
int ib_store_fsck_options_init(ib_store_fsck_options *opts, unsigned int version);
int ib_store_fsck_ext(ib_buf *report, ib_store *store, const ib_store_fsck_options *opts);

/* push.h: login */
int ib_registry_login(const char *host, const ib_registry_options *opts);
int ib_registry_logout(const char *host, const ib_registry_options *opts);

/* parse.h: the syntax tree */
typedef struct ib_node ib_node;
typedef struct ib_instructions ib_instructions;
typedef struct {
	const char *name;
	const char *content;
	size_t content_len;
	unsigned int fd;
	int expand;
	int chomp;
	...;
} ib_heredoc;
typedef struct {
	int line;
	const char *message;
	...;
} ib_parse_warning;
size_t ib_dockerfile_node_count(const ib_dockerfile *df);
const ib_node *ib_dockerfile_node(const ib_dockerfile *df, size_t i);
char ib_dockerfile_escape(const ib_dockerfile *df);
const char *ib_dockerfile_directive(const ib_dockerfile *df, const char *name);
size_t ib_dockerfile_warning_count(const ib_dockerfile *df);
const ib_parse_warning *ib_dockerfile_warning(const ib_dockerfile *df, size_t i);
int ib_node_dump(ib_buf *out, const ib_node *node);
const char *ib_node_keyword(const ib_node *node);
const char *ib_node_original(const ib_node *node);
size_t ib_node_flag_count(const ib_node *node);
const char *ib_node_flag(const ib_node *node, size_t i);
size_t ib_node_arg_count(const ib_node *node);
const char *ib_node_arg(const ib_node *node, size_t i, size_t *len);
int ib_node_is_json(const ib_node *node);
const ib_node *ib_node_nested(const ib_node *node);
size_t ib_node_heredoc_count(const ib_node *node);
const ib_heredoc *ib_node_heredoc(const ib_node *node, size_t i);
size_t ib_node_comment_count(const ib_node *node);
const char *ib_node_comment(const ib_node *node, size_t i);
int ib_node_start_line(const ib_node *node);
int ib_node_end_line(const ib_node *node);
int ib_heredoc_chomp(ib_buf *out, const ib_heredoc *heredoc);

/* parse.h: typed instructions */
typedef enum {
	IB_INSTR_FROM = 0, IB_INSTR_RUN, IB_INSTR_CMD, IB_INSTR_ENTRYPOINT, IB_INSTR_SHELL,
	IB_INSTR_LABEL, IB_INSTR_MAINTAINER, IB_INSTR_EXPOSE, IB_INSTR_ENV, IB_INSTR_ADD,
	IB_INSTR_COPY, IB_INSTR_VOLUME, IB_INSTR_USER, IB_INSTR_WORKDIR, IB_INSTR_ARG,
	IB_INSTR_ONBUILD, IB_INSTR_STOPSIGNAL, IB_INSTR_HEALTHCHECK
} ib_instruction_kind;
const char *ib_instruction_kind_name(ib_instruction_kind kind);
typedef struct {
	const char *const *items;
	size_t count;
} ib_instr_strings;
typedef struct {
	const char *key;
	const char *value;
	...;
} ib_instr_kv;
typedef struct {
	const char *name;
	const char *default_value;
	int has_default;
	...;
} ib_instr_arg;
typedef enum {
	IB_RUN_MOUNT_BIND = 0, IB_RUN_MOUNT_CACHE, IB_RUN_MOUNT_TMPFS, IB_RUN_MOUNT_SECRET, IB_RUN_MOUNT_SSH
} ib_run_mount_type;
typedef struct {
	const char *raw;
	ib_run_mount_type type;
	const char *target;
	const char *source;
	const char *from;
	const char *id;
	const char *sharing;
	const char *mode;
	const char *uid;
	const char *gid;
	const char *size;
	const char *env;
	int readonly;
	int required;
	...;
} ib_run_mount;
typedef struct {
	ib_instr_strings args;
	int json;
	const char *network;
	const char *security;
} ib_instr_run;
typedef struct {
	ib_instr_strings args;
	int json;
} ib_instr_cmd;
typedef struct {
	ib_instr_strings sources;
	const char *dest;
	int json;
	const char *from;
	const char *chown;
	const char *chmod;
	const char *checksum;
	int link;
	int parents;
	int keep_git_dir;
	ib_instr_strings excludes;
} ib_instr_copy;
typedef struct {
	int none;
	ib_instr_strings test;
	int64_t interval;
	int64_t timeout;
	int64_t start_period;
	int64_t start_interval;
	int retries;
} ib_instr_healthcheck;
typedef struct {
	const char *image;
	const char *name;
	const char *platform;
} ib_instr_from;
typedef struct {
	ib_instruction_kind kind;
	int line;
	int end_line;
	const char *original;
	const ib_node *node;
	union {
		ib_instr_from from;
		ib_instr_run run;
		ib_instr_cmd cmd;
		ib_instr_copy copy;
		ib_instr_strings list;
		const char *value;
		struct {
			const char *trigger;
			const char *keyword;
		} onbuild;
		ib_instr_healthcheck healthcheck;
	} u;
} ib_instruction;
size_t ib_instruction_mount_count(const ib_instruction *in);
const ib_run_mount *ib_instruction_mount(const ib_instruction *in, size_t i);
size_t ib_instruction_heredoc_count(const ib_instruction *in);
const ib_heredoc *ib_instruction_heredoc(const ib_instruction *in, size_t i);
size_t ib_instruction_kv_count(const ib_instruction *in);
const ib_instr_kv *ib_instruction_kv(const ib_instruction *in, size_t i);
size_t ib_instruction_arg_count(const ib_instruction *in);
const ib_instr_arg *ib_instruction_arg(const ib_instruction *in, size_t i);
typedef struct {
	size_t index;
	const char *base;
	const char *name;
	const char *platform;
	int line;
	const ib_instruction *from;
	const ib_instruction *const *instructions;
	size_t instruction_count;
	...;
} ib_stage;
int ib_instructions_parse(ib_instructions **out, const ib_dockerfile *df);
void ib_instructions_free(ib_instructions *ins);
size_t ib_instructions_meta_arg_count(const ib_instructions *ins);
const ib_instruction *ib_instructions_meta_arg(const ib_instructions *ins, size_t i);
size_t ib_instructions_stage_count(const ib_instructions *ins);
const ib_stage *ib_instructions_stage(const ib_instructions *ins, size_t i);
int ib_instruction_parse_single(ib_instruction **out, const char *text, const ib_parse_options *opts);
void ib_instruction_free(ib_instruction *instr);
int ib_parse_duration(int64_t *out_ns, const char *text);

/* parse.h: word expansion */
typedef int (*ib_expand_lookup_cb)(const char *name, int found, void *payload);
#define IB_EXPAND_KEEP_UNSET ...
#define IB_EXPAND_RAW_QUOTES ...
#define IB_EXPAND_RAW_ESCAPES ...
typedef struct {
	unsigned int version;
	const char *const *env;
	char escape;
	unsigned int flags;
	ib_expand_lookup_cb lookup;
	void *payload;
	...;
} ib_expand_options;
#define IB_EXPAND_OPTIONS_VERSION ...
int ib_expand_options_init(ib_expand_options *opts, unsigned int version);
int ib_expand_word(ib_buf *out, const char *word, const ib_expand_options *opts);
int ib_expand_words(ib_strarray *out, const char *word, const ib_expand_options *opts);

/* parse.h: .dockerignore */
typedef struct ib_ignore ib_ignore;
int ib_ignore_read(ib_strarray *out, const char *buf, size_t len);
int ib_ignore_new(ib_ignore **out, const char *const *patterns, size_t count);
int ib_ignore_parse(ib_ignore **out, const char *buf, size_t len, const char *filename);
int ib_ignore_matches(const ib_ignore *ignore, const char *path);
int ib_ignore_descend(const ib_ignore *ignore, const char *dir);
size_t ib_ignore_count(const ib_ignore *ignore);
const char *ib_ignore_pattern(const ib_ignore *ignore, size_t i, int *exception);
void ib_ignore_free(ib_ignore *ignore);
int ib_ignore_candidates(ib_strarray *out, const char *dockerfile_path);

/* plan.h */
typedef struct ib_plan ib_plan;
typedef struct {
	unsigned int version;
	const char *target;
	const char *const *build_args;
	const char *platform;
	...;
} ib_plan_options;
#define IB_PLAN_OPTIONS_VERSION ...
int ib_plan_options_init(ib_plan_options *opts, unsigned int version);
typedef enum { IB_BASE_SCRATCH = 0, IB_BASE_STAGE = 1, IB_BASE_IMAGE = 2 } ib_base_kind;
typedef struct {
	size_t index;
	const ib_stage *stage;
	const char *name;
	ib_base_kind base_kind;
	const char *base;
	size_t base_stage;
	const size_t *deps;
	size_t dep_count;
	size_t level;
	...;
} ib_plan_stage;
int ib_plan_new(ib_plan **out, const ib_dockerfile *df, const ib_instructions *ins, const ib_plan_options *opts);
void ib_plan_free(ib_plan *plan);
size_t ib_plan_stage_count(const ib_plan *plan);
const ib_plan_stage *ib_plan_stage_at(const ib_plan *plan, size_t i);
const ib_plan_stage *ib_plan_target(const ib_plan *plan);
const char *const *ib_plan_meta_env(const ib_plan *plan);
int ib_plan_unused_build_args(ib_strarray *out, const ib_plan *plan);
int ib_plan_print(ib_buf *out, const ib_plan *plan);

/* _build.py's preamble: SIGINT cancels the main thread's long call */
int ibpy_sigint_begin(int *flag);
int ibpy_sigint_end(void);
