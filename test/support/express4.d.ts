// The Express 4 copy installed for the compatibility test (npm alias express4 → express@4) has no types of its
// own; its API surface used in the tests is the one Express 5's types describe.
declare module 'express4' {
  import express = require('express');
  export = express;
}
