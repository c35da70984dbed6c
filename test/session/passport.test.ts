// A passport-local login flow, unchanged from what an express-session app would write, on kit.session().

import express from 'express';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import request from 'supertest';
import { describeForEachStore } from '../support/stores';
import { S, SECRET, setCookie } from './helpers';

const USERS = new Map([['7', { id: '7', username: 'ada', password: 'lovelace' }]]);

function passportApp(
  kit: ReturnType<Parameters<Parameters<typeof describeForEachStore>[1]>[0]['makeKit']>,
  bind = true,
) {
  const auth = new passport.Passport();
  auth.use(
    new LocalStrategy((username, password, done) => {
      const user = [...USERS.values()].find((u) => u.username === username);
      done(null, user && user.password === password ? user : false);
    }),
  );
  auth.serializeUser((user, done) => done(null, (user as { id: string }).id));
  auth.deserializeUser((id: string, done) => done(null, USERS.get(id) ?? false));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(kit.session({ secret: SECRET }));
  app.use(auth.initialize());
  app.use(auth.session());
  if (!bind) {
    // Exactly what an express-session app writes.
    app.post('/login', auth.authenticate('local', { successRedirect: '/me', failureRedirect: '/login-failed' }));
  }
  app.post('/login', auth.authenticate('local', { failureRedirect: '/login-failed' }), (req, res) => {
    // Bind the session to the user for kit.sessions (list / log out everywhere), after passport's own regenerate.
    S(req)
      .login((req.user as { id: string }).id)
      .then(
        () => res.redirect('/me'),
        (err: unknown) => res.status(500).json({ err: String(err) }),
      );
  });
  app.get('/me', (req, res) => {
    if (!req.isAuthenticated()) return void res.status(401).json({ user: null });
    res.json({ user: (req.user as { username: string }).username });
  });
  app.post('/logout', (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.json({ ok: true })));
  });
  return app;
}

describeForEachStore(
  'session with passport-local',
  ({ makeKit }) => {
    test('log in, stay logged in, log out; the session id changes at login', async () => {
      const kit = makeKit();
      const app = passportApp(kit);
      expect((await request(app).get('/me')).status).toBe(401);
      const bad = await request(app).post('/login').type('form').send({ username: 'ada', password: 'nope' });
      expect(bad.headers.location).toBe('/login-failed');

      const login = await request(app).post('/login').type('form').send({ username: 'ada', password: 'lovelace' });
      expect(login.status).toBe(302);
      expect(login.headers.location).toBe('/me');
      const cookie = setCookie(login) as string;
      expect(cookie).toBeDefined();
      const me = await request(app).get('/me').set('Cookie', cookie);
      expect(me.body).toEqual({ user: 'ada' });

      const sessions = await kit.sessions.list('7');
      expect(sessions.map((s) => s.id)).toEqual([cookie.slice(7, 29)]);

      const out = await request(app).post('/logout').set('Cookie', cookie);
      expect(out.status).toBe(200);
      expect((await request(app).get('/me').set('Cookie', cookie)).status).toBe(401);
      const after = setCookie(out);
      if (after) expect((await request(app).get('/me').set('Cookie', after)).status).toBe(401);
    });

    test('the unchanged express-session flow (successRedirect) works as it is', async () => {
      const kit = makeKit();
      const app = passportApp(kit, false);
      const login = await request(app).post('/login').type('form').send({ username: 'ada', password: 'lovelace' });
      expect(login.headers.location).toBe('/me');
      const cookie = setCookie(login) as string;
      expect((await request(app).get('/me').set('Cookie', cookie)).body).toEqual({ user: 'ada' });
      // The session joined the user's index by itself (passport's session.passport.user).
      expect((await kit.sessions.list('7')).map((s) => s.id)).toEqual([cookie.slice(7, 29)]);
      expect((await request(app).post('/logout').set('Cookie', cookie)).status).toBe(200);
      expect((await request(app).get('/me').set('Cookie', cookie)).status).toBe(401);
      expect(await kit.sessions.list('7')).toEqual([]);

      const again = setCookie(
        await request(app).post('/login').type('form').send({ username: 'ada', password: 'lovelace' }),
      ) as string;
      expect(await kit.sessions.revokeAll('7')).toBe(1);
      expect((await request(app).get('/me').set('Cookie', again)).status).toBe(401);
    });

    test('log out everywhere reaches a passport session', async () => {
      const kit = makeKit();
      const app = passportApp(kit);
      const login = await request(app).post('/login').type('form').send({ username: 'ada', password: 'lovelace' });
      const cookie = setCookie(login) as string;
      expect(await kit.sessions.revokeAll('7')).toBe(1);
      expect((await request(app).get('/me').set('Cookie', cookie)).status).toBe(401);
    });
  },
  { tiers: ['memory', 'standalone', 'cluster'] },
);
