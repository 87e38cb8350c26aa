/* Several duosign-cloud nodes on one PostgreSQL, for the tests and the bench
 * that need them (test_pg_kills, pg_nodes_bench): include after
 * daemon_client.h, in a program run through tests/integration/pg/pg_env.sh
 * whose it_setup started node 0. Node i serves its own copy of node 0's data
 * directory (same KEK, TLS files and store URL) and keeps its port across
 * restarts, so clients reconnect to it. */
#ifndef DUO_IT_PG_NODES_H
#define DUO_IT_PG_NODES_H

#include <signal.h>
#include <sys/wait.h>

#define PG_NODES_MAX 3

static char g_node_dirs[PG_NODES_MAX][300];
static daemon_t g_node[PG_NODES_MAX];
static int g_node_port[PG_NODES_MAX];
static char g_node_args[256];

/* Starts node i (again) on its port; a port freed by a kill may linger a
 * moment, so a few tries. Returns 0 or -1. */
static DUO_IT_UNUSED int pg_node_start(int i) {
    for (int tries = 0; tries < 20; tries++) {
        if (duo_it_daemon_start(&g_node[i], g_bin, g_node_dirs[i], g_node_port[i], g_node_args) == 0) {
            g_node_port[i] = g_node[i].port;
            return 0;
        }
        usleep(100 * 1000);
    }
    return -1;
}

static DUO_IT_UNUSED void pg_node_kill9(int i) {
    kill(g_node[i].pid, SIGKILL);
    waitpid(g_node[i].pid, NULL, 0);
}

/* After it_setup(..., &g_node[0], ...): copies node 0's directory for nodes
 * 1..n-1 and starts them all with args (node 0 is restarted with them).
 * Returns 0 or -1 (the reason printed). */
static DUO_IT_UNUSED int pg_nodes_up(int n, const char *args) {
    snprintf(g_node_args, sizeof g_node_args, "%s", args);
    snprintf(g_node_dirs[0], sizeof g_node_dirs[0], "%s", g_dir);
    g_node_port[0] = g_node[0].port;
    if (daemon_stop(&g_node[0]) != 0 || pg_node_start(0) != 0) {
        fprintf(stderr, "cannot restart node 0\n");
        return -1;
    }
    for (int i = 1; i < n; i++) {
        snprintf(g_node_dirs[i], sizeof g_node_dirs[i], "%s%d", g_dir, i);
        if (run_cmd(NULL, 0, "cp -a '%s' '%s' && rm -f '%s/serve.lock'", g_dir, g_node_dirs[i], g_node_dirs[i]) != 0 ||
            pg_node_start(i) != 0) {
            fprintf(stderr, "cannot start node %d\n", i);
            return -1;
        }
    }
    return 0;
}

/* Stops nodes 1..n-1 (each must drain and exit 0); node 0 is it_finish's. */
static DUO_IT_UNUSED int pg_nodes_down(int n) {
    int bad = 0;
    for (int i = 1; i < n; i++) bad |= daemon_stop(&g_node[i]) != 0;
    return bad ? -1 : 0;
}

#endif
