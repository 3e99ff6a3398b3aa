// Package docs holds the project's documentation pages (the Markdown files beside this one). It has no code: its
// test checks that every relative link and anchor in these pages and in the README resolves.
package docs
