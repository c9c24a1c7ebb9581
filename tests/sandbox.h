/* sandbox.h — a throw-away configuration sandbox for the config suites: a temp root with
 * home/, xdg/ and cwd/ (the working directory), HOME and XDG_CONFIG_HOME pointing into it.
 *
 * Owns:    the directories; sandbox_teardown and sandbox_base_teardown remove them.
 * Threads: test processes only (Check forks each test); not thread-safe.
 * Fails:   a Check assertion when a directory cannot be made.
 *
 * Each test's root lives in one base directory that the parent process makes and removes
 * (register sandbox_base_setup/teardown as an unchecked fixture): a failing check ends the
 * test's process without running its teardown, and the base's removal still cleans up.
 */
#ifndef KM_TEST_SANDBOX_H
#define KM_TEST_SANDBOX_H

/* The current test's root, valid between sandbox_setup and sandbox_teardown. */
extern char sandbox_root[512];

/* Make the base directory /tmp/<name>.XXXXXX for one test case, and remove it. */
void sandbox_base_setup_named(const char *name);
void sandbox_base_teardown(void);

/* Make a root with home/, xdg/ and cwd/, point HOME and XDG_CONFIG_HOME into it and chdir
 * into cwd/. sandbox_teardown goes back to the old directory and removes the root. */
void sandbox_setup(void);
void sandbox_teardown(void);

#endif
