/* check_jobq.c — the loop ⇄ service-thread hand-off: order, wake-ups, progress, stop. */
#include "jobq.h"

#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static kmjobq *q;

static void
setup(void)
{
    kmerr e = { 0 };

    ck_assert_int_eq(kmjobq_new(&q, &e), KM_OK);
    ck_assert_ptr_nonnull(q);
}

static void
teardown(void)
{
    kmjobq_free(q);
    q = NULL;
}

/* Wait (up to 10 s: a bound for a broken test, never a timing assertion) for the eventfd. */
static int
wait_readable(void)
{
    struct pollfd p = { kmjobq_fd(q), POLLIN, 0 };

    return poll(&p, 1, 10000) == 1 && (p.revents & POLLIN);
}

/* Without waiting: is the eventfd readable now? */
static int
readable_now(void)
{
    struct pollfd p = { kmjobq_fd(q), POLLIN, 0 };

    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static size_t
count_notes(struct kmjob_notes *notes)
{
    struct kmjob_note *n;
    size_t             k = 0;

    STAILQ_FOREACH(n, notes, link)
        k++;
    return k;
}

static void
free_progress(struct kmjob_notes *notes)
{
    for (;;) {
        struct kmjob_note *n = STAILQ_FIRST(notes);
        if (!n)
            break;
        STAILQ_REMOVE_HEAD(notes, link);
        if (!n->final)
            free(n);
    }
}

/* --- the todo side ------------------------------------------------------------------- */

START_TEST(jobs_are_popped_in_the_order_they_were_pushed)
{
    struct kmjob a, b, c;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    kmjobq_push(q, &a);
    kmjobq_push(q, &b);
    kmjobq_push(q, &c);
    ck_assert_ptr_eq(kmjobq_pop(q), &a);
    ck_assert_ptr_eq(kmjobq_pop(q), &b);
    ck_assert_ptr_eq(kmjobq_pop(q), &c);
}
END_TEST

START_TEST(stop_lets_queued_jobs_drain_then_pop_returns_null)
{
    struct kmjob a, b;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    kmjobq_push(q, &a);
    kmjobq_push(q, &b);
    kmjobq_stop(q);
    ck_assert_ptr_eq(kmjobq_pop(q), &a);
    ck_assert_ptr_eq(kmjobq_pop(q), &b);
    ck_assert_ptr_null(kmjobq_pop(q));
    ck_assert_ptr_null(kmjobq_pop(q));
}
END_TEST

static void *
pop_once(void *arg)
{
    (void)arg;
    return kmjobq_pop(q);
}

START_TEST(stop_wakes_every_thread_waiting_for_a_job)
{
    pthread_t t[3];

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, pop_once, NULL), 0);
    kmjobq_stop(q);
    for (int i = 0; i < 3; i++) {
        void *got = &got;
        ck_assert_int_eq(pthread_join(t[i], &got), 0);
        ck_assert_ptr_null(got);
    }
}
END_TEST

START_TEST(a_full_queue_refuses_a_job_and_takes_one_again_once_one_is_popped)
{
    struct kmjob a, b, c;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    kmjobq_set_limit(q, 2);
    /* nobody waits in pop: every push says no thread was idle */
    ck_assert_int_eq(kmjobq_push(q, &a), KMJOBQ_NO_IDLE);
    ck_assert_int_eq(kmjobq_push(q, &b), KMJOBQ_NO_IDLE);
    ck_assert_int_eq(kmjobq_waiting(q), 2);
    ck_assert_int_eq(kmjobq_push(q, &c), KMJOBQ_FULL);
    ck_assert_int_eq(kmjobq_waiting(q), 2);
    ck_assert_ptr_eq(kmjobq_pop(q), &a);
    ck_assert_int_eq(kmjobq_push(q, &c), KMJOBQ_NO_IDLE);
    ck_assert_ptr_eq(kmjobq_pop(q), &b);
    ck_assert_ptr_eq(kmjobq_pop(q), &c);
    ck_assert_int_eq(kmjobq_waiting(q), 0);
}
END_TEST

static void *
pop_idle_once(void *arg)
{
    (void)arg;
    return kmjobq_pop_idle(q, 3000);
}

START_TEST(a_push_while_a_thread_waits_says_it_was_taken_and_idle_pops_time_out)
{
    struct kmjob a;
    pthread_t    t;
    void        *got = NULL;
    int64_t      t0;

    memset(&a, 0, sizeof(a));
    ck_assert_int_eq(pthread_create(&t, NULL, pop_idle_once, NULL), 0);
    for (int i = 0; i < 2500 && kmjobq_idle(q) == 0; i++)
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
    ck_assert_int_eq(kmjobq_idle(q), 1);
    ck_assert_int_eq(kmjobq_push(q, &a), KMJOBQ_QUEUED);
    ck_assert_int_eq(pthread_join(t, &got), 0);
    ck_assert_ptr_eq(got, &a);
    /* with nothing to do, an idle pop gives up after its time (real time) */
    t0 = now_ms();
    ck_assert_ptr_null(kmjobq_pop_idle(q, 300));
    ck_assert_int_ge(now_ms() - t0, 290);
    ck_assert_int_eq(kmjobq_stopping(q), 0);
    kmjobq_stop(q);
    ck_assert_int_eq(kmjobq_stopping(q), 1);
    ck_assert_ptr_null(kmjobq_pop_idle(q, 10000));
}
END_TEST

/* An added thread: takes jobs until it has been idle 400 ms; counts them, notes when it left. */
struct extra {
    int       jobs;
    int64_t   left_ms;
    pthread_t tid;
};

static void *
extra_loop(void *arg)
{
    struct extra *x = arg;

    while (kmjobq_pop_idle(q, 400) != NULL)
        x->jobs++;
    x->left_ms = now_ms();
    return NULL;
}

static void
wait_idle(size_t n)
{
    for (int i = 0; i < 2500 && kmjobq_idle(q) < n; i++)
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
    ck_assert_uint_eq(kmjobq_idle(q), n);
}

/* A job goes to the thread that became idle last: with one job every 100 ms, one thread does
 * them all and the other, idle 400 ms, leaves while jobs still come. (Woken in turn, each got
 * a job every 200 ms and neither ever left: a worker kept every thread a burst had added.)
 * Real time. */
START_TEST(the_thread_idle_the_shortest_takes_a_job_so_a_surplus_one_leaves)
{
    enum { N = 15 };
    struct kmjob j[N];
    struct extra a = { 0 }, b = { 0 };
    int64_t      last_push;

    memset(j, 0, sizeof(j));
    ck_assert_int_eq(pthread_create(&a.tid, NULL, extra_loop, &a), 0);
    wait_idle(1);
    ck_assert_int_eq(pthread_create(&b.tid, NULL, extra_loop, &b), 0);
    wait_idle(2);
    for (int i = 0; i < N; i++) {
        ck_assert_int_ne(kmjobq_push(q, &j[i]), KMJOBQ_FULL);
        nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
    }
    last_push = now_ms() - 100;
    ck_assert_int_eq(pthread_join(a.tid, NULL), 0);
    ck_assert_int_eq(pthread_join(b.tid, NULL), 0);
    ck_assert_int_eq(a.jobs, 0);
    ck_assert_int_eq(b.jobs, N);
    ck_assert_msg(a.left_ms < last_push, "the surplus thread left %lld ms after the last job "
                  "came", (long long)(a.left_ms - last_push));
    ck_assert_int_eq(kmjobq_waiting(q), 0);
}
END_TEST

/* --- the done side ------------------------------------------------------------------- */

START_TEST(finishing_a_job_wakes_the_loop_and_hands_back_its_final_note)
{
    struct kmjob       job;
    struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);
    struct kmjob_note *n;

    memset(&job, 0, sizeof(job));
    ck_assert(!readable_now());
    kmjobq_finish(q, &job);
    ck_assert(readable_now());
    kmjobq_take(q, &notes);
    ck_assert(!readable_now());
    n = STAILQ_FIRST(&notes);
    ck_assert_ptr_eq(n, &job.final);
    ck_assert_ptr_eq(n->job, &job);
    ck_assert_int_eq(n->final, 1);
    ck_assert_ptr_null(STAILQ_NEXT(n, link));
}
END_TEST

START_TEST(notes_posted_before_the_loop_takes_them_cost_one_wake_up)
{
    struct kmjob       a, b;
    struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);
    uint64_t           count = 0;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    kmjobq_progress(q, &a, 1, 3);
    kmjobq_progress(q, &a, 2, 3);
    kmjobq_finish(q, &a);
    kmjobq_finish(q, &b);
    /* the eventfd was written once, when the list went from empty to one note */
    ck_assert_int_eq(read(kmjobq_fd(q), &count, sizeof(count)), (int)sizeof(count));
    ck_assert_uint_eq(count, 1);
    kmjobq_take(q, &notes);
    ck_assert_uint_eq(count_notes(&notes), 4);
    free_progress(&notes);
}
END_TEST

START_TEST(a_note_posted_after_a_take_wakes_the_loop_again)
{
    struct kmjob       a, b;
    struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    kmjobq_finish(q, &a);
    kmjobq_take(q, &notes);
    ck_assert_uint_eq(count_notes(&notes), 1);
    ck_assert(!readable_now());
    kmjobq_finish(q, &b);
    ck_assert(readable_now());
    kmjobq_take(q, &notes);
    ck_assert_uint_eq(count_notes(&notes), 2);
    ck_assert_ptr_eq(STAILQ_FIRST(&notes)->job, &a);
}
END_TEST

START_TEST(progress_notes_carry_their_counts_and_come_before_the_final_note)
{
    struct kmjob       job;
    struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);
    struct kmjob_note *n;
    int                k = 0;

    memset(&job, 0, sizeof(job));
    kmjobq_progress(q, &job, 1, 2);
    kmjobq_progress(q, &job, 2, 2);
    kmjobq_finish(q, &job);
    kmjobq_take(q, &notes);
    STAILQ_FOREACH(n, &notes, link) {
        ck_assert_ptr_eq(n->job, &job);
        if (k < 2) {
            ck_assert_int_eq(n->final, 0);
            ck_assert_int_eq(n->done, k + 1);
            ck_assert_int_eq(n->total, 2);
        } else {
            ck_assert_int_eq(n->final, 1);
        }
        k++;
    }
    ck_assert_int_eq(k, 3);
    free_progress(&notes);
}
END_TEST

/* --- a round trip through real threads ------------------------------------------------ */

#define NJOBS    200
#define NTHREADS 4

static void *
service(void *arg)
{
    (void)arg;
    for (;;) {
        struct kmjob *job = kmjobq_pop(q);
        if (!job)
            break;
        kmjobq_progress(q, job, 1, 1);
        job->status = 200;
        kmjobq_finish(q, job);
    }
    return NULL;
}

START_TEST(every_job_comes_back_exactly_once_through_the_threads)
{
    static struct kmjob jobs[NJOBS];
    pthread_t           t[NTHREADS];
    int                 seen[NJOBS], finals = 0, progress = 0;

    memset(jobs, 0, sizeof(jobs));
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, service, NULL), 0);
    for (int i = 0; i < NJOBS; i++)
        kmjobq_push(q, &jobs[i]);
    while (finals < NJOBS) {
        struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);

        ck_assert_msg(wait_readable(), "no wake-up with %d jobs outstanding", NJOBS - finals);
        kmjobq_take(q, &notes);
        for (;;) {
            struct kmjob_note *n = STAILQ_FIRST(&notes);
            int                idx;
            if (!n)
                break;
            STAILQ_REMOVE_HEAD(&notes, link);
            idx = (int)(n->job - jobs);
            ck_assert(idx >= 0 && idx < NJOBS);
            if (n->final) {
                ck_assert_int_eq(seen[idx], 1);   /* its progress came first */
                ck_assert_int_eq(n->job->status, 200);
                seen[idx] = 2;
                finals++;
            } else {
                ck_assert_int_eq(seen[idx], 0);
                seen[idx] = 1;
                progress++;
                free(n);
            }
        }
    }
    kmjobq_stop(q);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(progress, NJOBS);
    for (int i = 0; i < NJOBS; i++)
        ck_assert_int_eq(seen[i], 2);
}
END_TEST

static Suite *
jobq_suite(void)
{
    Suite *s = suite_create("jobq");
    TCase *todo = tcase_create("todo");
    TCase *done = tcase_create("done");
    TCase *threads = tcase_create("threads");

    tcase_add_checked_fixture(todo, setup, teardown);
    tcase_add_test(todo, jobs_are_popped_in_the_order_they_were_pushed);
    tcase_add_test(todo, stop_lets_queued_jobs_drain_then_pop_returns_null);
    tcase_add_test(todo, stop_wakes_every_thread_waiting_for_a_job);
    tcase_add_test(todo, a_full_queue_refuses_a_job_and_takes_one_again_once_one_is_popped);
    tcase_add_test(todo, a_push_while_a_thread_waits_says_it_was_taken_and_idle_pops_time_out);
    tcase_add_test(todo, the_thread_idle_the_shortest_takes_a_job_so_a_surplus_one_leaves);
    suite_add_tcase(s, todo);

    tcase_add_checked_fixture(done, setup, teardown);
    tcase_add_test(done, finishing_a_job_wakes_the_loop_and_hands_back_its_final_note);
    tcase_add_test(done, notes_posted_before_the_loop_takes_them_cost_one_wake_up);
    tcase_add_test(done, a_note_posted_after_a_take_wakes_the_loop_again);
    tcase_add_test(done, progress_notes_carry_their_counts_and_come_before_the_final_note);
    suite_add_tcase(s, done);

    tcase_add_checked_fixture(threads, setup, teardown);
    tcase_add_test(threads, every_job_comes_back_exactly_once_through_the_threads);
    tcase_set_timeout(threads, 30);
    suite_add_tcase(s, threads);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(jobq_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
