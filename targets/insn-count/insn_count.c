/*
 * A qemu-user TCG plugin that counts the guest instructions a program
 * executes: at translation, each block gets an inline add of its instruction
 * count, run every time the block executes. Much faster than logging every
 * block execution (`-d exec`), and the same count.
 *
 *   qemu-aarch64 -plugin ./libinsn_count.so,out=COUNT_FILE PROGRAM ...
 *
 * At exit the total is written to COUNT_FILE (or stderr without `out=`).
 * With `blocks=BLOCKS_FILE`, each translated block also counts its own
 * executions, and BLOCKS_FILE gets one line per translation, "VADDR
 * INSNS EXECUTIONS" (hex, decimal, decimal): what targets/profile_instructions.py
 * maps onto the program's symbols to say where the instructions go.
 * The add is not atomic: count single-threaded guests (our runtime with
 * --threads 1, onnxruntime with one intra- and one inter-op thread).
 *
 * Built against qemu's plugin API version 1 (qemu 4.2 to 8.x, Debian 12's
 * 7.2 among them); the few declarations it needs are written out here from
 * that documented API, so no qemu headers are needed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

EXPORT int qemu_plugin_version = 1;

static uint64_t executed;
static char out_path[4096];
static char blocks_path[4096];

/* One per translation (a block translated twice gets two; the script adds
 * them up). Chunks are never freed or moved: qemu holds their addresses. */
struct block {
    uint64_t vaddr;
    uint64_t insns;
    uint64_t executions;
};
#define CHUNK 65536
struct chunk {
    struct chunk *next;
    size_t used;
    struct block blocks[CHUNK];
};
static struct chunk *chunks;
static pthread_mutex_t chunks_lock = PTHREAD_MUTEX_INITIALIZER;

static struct block *new_block(void)
{
    pthread_mutex_lock(&chunks_lock);
    if (!chunks || chunks->used == CHUNK) {
        struct chunk *c = calloc(1, sizeof *c);
        if (!c) {
            pthread_mutex_unlock(&chunks_lock);
            return NULL;
        }
        c->next = chunks;
        chunks = c;
    }
    struct block *b = &chunks->blocks[chunks->used++];
    pthread_mutex_unlock(&chunks_lock);
    return b;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t insns = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, insns);
    if (blocks_path[0]) {
        struct block *b = new_block();
        if (b) {
            b->vaddr = qemu_plugin_tb_vaddr(tb);
            b->insns = insns;
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->executions, 1);
        } else {
            fprintf(stderr, "insn_count: out of memory for block counts\n");
            blocks_path[0] = 0;
        }
    }
}

static void write_blocks(void)
{
    FILE *f = fopen(blocks_path, "w");
    if (!f) {
        perror(blocks_path);
        return;
    }
    for (struct chunk *c = chunks; c; c = c->next) {
        for (size_t i = 0; i < c->used; i++) {
            const struct block *b = &c->blocks[i];
            if (b->executions) {
                fprintf(f, "%llx %llu %llu\n", (unsigned long long)b->vaddr, (unsigned long long)b->insns,
                        (unsigned long long)b->executions);
            }
        }
    }
    fclose(f);
}

static void write_count(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = out_path[0] ? fopen(out_path, "w") : stderr;
    if (!f) {
        perror(out_path);
        return;
    }
    fprintf(f, "%llu\n", (unsigned long long)executed);
    if (f != stderr) {
        fclose(f);
    }
    if (blocks_path[0]) {
        write_blocks();
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    if (info->system_emulation) {
        fprintf(stderr, "insn_count: for qemu-user only\n");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0 && strlen(argv[i] + 4) < sizeof out_path) {
            strcpy(out_path, argv[i] + 4);
        } else if (strncmp(argv[i], "blocks=", 7) == 0 && strlen(argv[i] + 7) < sizeof blocks_path) {
            strcpy(blocks_path, argv[i] + 7);
        } else {
            fprintf(stderr, "insn_count: unknown argument %s (takes out=PATH and blocks=PATH)\n", argv[i]);
            return 1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_count, NULL);
    return 0;
}
