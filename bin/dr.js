#!/usr/bin/env node
// `npx dr <command>`: the command line (cli/dr.ts), run through tsx like every entry point of the project.
require('tsx/cjs');
const { main } = require('../cli/dr.ts');
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
