/* check_refresh.c — a worker's background refreshes of kept answers: one job per answer per
 * window, handed back and freed, never past half the queue's room, none once stopped. */
#include "refresh.h"
#include "reg.h"
#include "svc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kmjobq    *q;
static kmrefresh *rf;

static const struct kmtool tool = { .name = "klaviyo_get_campaign_performance" };

static void
setup(void)
{
    kmerr e = { 0 };

    ck_assert_int_eq(kmjobq_new(&q, &e), KM_OK);
    kmjobq_set_limit(q, 8);
    rf = kmrefresh_new(q, 8);
}

static void
teardown(void)
{
    kmrefresh_free(rf);
    kmjobq_free(q);
    rf = NULL;
    q = NULL;
}

static json_object *
args_of(const char *account)
{
    json_object *a = json_object_new_object();

    json_object_object_add(a, "account", json_object_new_string(account));
    return a;
}

/* Pop the next job as a service thread would, finish it, and let the loop take it back. */
static struct kmjob *
pop_finish_take(void)
{
    struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);
    struct kmjob      *job = kmjobq_pop_idle(q, 0);
    struct kmjob_note *n;

    if (!job)
        return NULL;
    kmjobq_finish(q, job);
    kmjobq_take(q, &notes);
    n = STAILQ_FIRST(&notes);
    ck_assert_ptr_nonnull(n);
    ck_assert_ptr_eq(n->job, job);
    ck_assert(n->final);
    return job;
}

START_TEST(an_answer_is_asked_once_per_window_with_its_own_copy_of_the_arguments)
{
    json_object  *args = args_of("kiwi");
    struct kmjob *job;

    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 1, "rid-1", 60000), 1);
    /* the caller's arguments stay the caller's, unchanged */
    ck_assert_int_eq(json_object_object_length(args), 1);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 1, "rid-2", 60000), 0);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:2", &tool, args, 0, "rid-3", 60000), 1);
    ck_assert_uint_eq(kmjobq_waiting(q), 2);   /* no thread was idle: they wait for one */

    job = pop_finish_take();
    ck_assert(job->background);
    ck_assert_ptr_eq(job->tool, &tool);
    ck_assert_ptr_ne(job->args, args);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(job->args, "account")),
                     "kiwi");
    ck_assert_str_eq(job->rid, "rid-1");
    ck_assert_int_eq(job->view, 1);
    ck_assert_int_eq(job->status, KMSVC_REFRESH_FAILED);   /* until a thread says otherwise */
    job->status = KMSVC_REFRESH_KEPT;
    ck_assert_int_eq(kmrefresh_done(rf, job), 1);
    ck_assert_int_eq(kmrefresh_done(rf, pop_finish_take()), 1);
    ck_assert_ptr_null(kmjobq_pop_idle(q, 0));
    /* made (or failed), a:1 stays asked until its window ends */
    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 1, "rid-4", 60000), 0);
    json_object_put(args);
}
END_TEST

START_TEST(an_answer_is_asked_again_once_its_window_has_ended)
{
    json_object  *args = args_of("kiwi");
    struct kmjob *job;

    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 0, "r", 100), 1);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 0, "r", 100), 0);
    usleep(150 * 1000);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 0, "r", 100), 1);
    while ((job = pop_finish_take()) != NULL)
        ck_assert_int_eq(kmrefresh_done(rf, job), 1);
    json_object_put(args);
}
END_TEST

/* A refresh whose marker another held (KMSVC_REFRESH_NOT_OURS: a peer makes it, or a worker
 * that a reload replaces and that gives the marker back when it stops) is asked again a second
 * later, not a window later; one that ran, kept or failed, is not. Real time: REASK_MS. */
START_TEST(an_answer_another_held_is_asked_again_a_second_later)
{
    static const enum kmsvc_refreshed outcome[] = { KMSVC_REFRESH_NOT_OURS, KMSVC_REFRESH_KEPT,
                                                    KMSVC_REFRESH_FAILED };
    json_object  *args = args_of("kiwi");
    struct kmjob *job;
    char          key[16];

    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "a:%d", i);
        ck_assert_int_eq(kmrefresh_ask(rf, key, &tool, args, 0, "r", 60000), 1);
        job = pop_finish_take();
        ck_assert_ptr_nonnull(job);
        job->status = outcome[i];
        ck_assert_int_eq(kmrefresh_done(rf, job), 1);
        ck_assert_int_eq(kmrefresh_ask(rf, key, &tool, args, 0, "r", 60000), 0);
    }
    usleep(1100 * 1000);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:0", &tool, args, 0, "r", 60000), 1);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 0, "r", 60000), 0);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:2", &tool, args, 0, "r", 60000), 0);
    while ((job = pop_finish_take()) != NULL)
        ck_assert_int_eq(kmrefresh_done(rf, job), 1);
    json_object_put(args);
}
END_TEST

START_TEST(a_call_is_not_a_refresh_and_is_left_to_its_owner)
{
    struct kmjob call;

    memset(&call, 0, sizeof(call));
    ck_assert_int_eq(kmrefresh_done(rf, &call), 0);
    call.background = 1;            /* someone else's background job */
    call.owner = &call;
    ck_assert_int_eq(kmrefresh_done(rf, &call), 0);
}
END_TEST

START_TEST(refreshes_take_at_most_half_of_the_room_calls_have)
{
    json_object *args = args_of("kiwi");
    char         key[16];
    int          queued = 0;

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "a:%d", i);
        queued += kmrefresh_ask(rf, key, &tool, args, 0, "r", 60000);
    }
    ck_assert_int_eq(queued, 4);            /* QUEUE_MAX 8 */
    ck_assert_uint_eq(kmjobq_waiting(q), 4);
    /* one taken by a thread: room for one more, and an answer refused for want of room was
     * not counted as asked */
    ck_assert_int_eq(kmrefresh_done(rf, pop_finish_take()), 1);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:5", &tool, args, 0, "r", 60000), 1);
    json_object_put(args);
}
END_TEST

START_TEST(stopping_cancels_what_is_queued_and_asks_nothing_more)
{
    json_object  *args = args_of("kiwi");
    struct kmjob *job;

    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 0, "r", 60000), 1);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:2", &tool, args, 0, "r", 60000), 1);
    kmrefresh_stop(rf);
    ck_assert_int_eq(kmrefresh_ask(rf, "a:3", &tool, args, 0, "r", 60000), 0);
    job = pop_finish_take();
    ck_assert(atomic_load(&job->cancelled));
    ck_assert_int_eq(kmrefresh_done(rf, job), 1);
    /* the one still queued is freed with the kmrefresh (teardown; ASan and valgrind say
     * whether anything leaks) */
    ck_assert(atomic_load(&((struct kmjob *)kmjobq_pop_idle(q, 0))->cancelled));
    json_object_put(args);
}
END_TEST

START_TEST(without_a_window_nothing_is_asked)
{
    json_object *args = args_of("kiwi");

    ck_assert_int_eq(kmrefresh_ask(rf, "a:1", &tool, args, 0, "r", 0), 0);
    ck_assert_int_eq(kmrefresh_ask(rf, NULL, &tool, args, 0, "r", 1000), 0);
    ck_assert_uint_eq(kmjobq_waiting(q), 0);
    json_object_put(args);
}
END_TEST

static Suite *
refresh_suite(void)
{
    Suite *s = suite_create("refresh");
    TCase *tc = tcase_create("asks");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_answer_is_asked_once_per_window_with_its_own_copy_of_the_arguments);
    tcase_add_test(tc, an_answer_is_asked_again_once_its_window_has_ended);
    tcase_add_test(tc, an_answer_another_held_is_asked_again_a_second_later);
    tcase_add_test(tc, a_call_is_not_a_refresh_and_is_left_to_its_owner);
    tcase_add_test(tc, refreshes_take_at_most_half_of_the_room_calls_have);
    tcase_add_test(tc, stopping_cancels_what_is_queued_and_asks_nothing_more);
    tcase_add_test(tc, without_a_window_nothing_is_asked);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(refresh_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
