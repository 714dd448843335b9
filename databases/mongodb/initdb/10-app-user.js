// Creates the platform's MongoDB users. The image's entrypoint runs every *.js file of
// /docker-entrypoint-initdb.d once, with mongosh, on the first start of an empty data volume:
// against a temporary mongod without authorization, after it has created the root user.
//
// The users live in the admin database (clients connect with authSource=admin) and hold roles on
// the allixios database only, but for the backup login (the built-in backup role). Passwords come from the environment (set from the engine's secrets);
// the MONGO_INITDB_ prefix makes the entrypoint unset them before it starts the real mongod, so
// they exist only while this script runs.
//
// Running the file again by hand (mongosh as root, same variables) sets the passwords and roles
// anew. A rotation does not need it: the bootstrap compares each user's stored SCRAM key with the
// stack's password and updates the user where they differ (README "Rotating a password").

const DATABASE = 'allixios';

const USERS = [
  // The platform: reads and writes documents, creates its collections and indexes in allixios.
  { user: 'allixios_app', passwordVariable: 'MONGO_INITDB_APP_PASSWORD', roles: [{ role: 'readWrite', db: DATABASE }] },
  // Reporting and support: reads allixios, writes nothing.
  { user: 'allixios_readonly', passwordVariable: 'MONGO_INITDB_READONLY_PASSWORD', roles: [{ role: 'read', db: DATABASE }] },
  // The backup jobs (databases/mongodb/backup.ts): MongoDB's built-in backup role, what mongodump
  // --oplog of the whole instance needs (every database, the oplog, config.transactions) and no
  // write. Its only role on admin; the bootstrap gives it the same on a volume created before it.
  { user: 'allixios_backup', passwordVariable: 'MONGO_INITDB_BACKUP_PASSWORD', roles: [{ role: 'backup', db: 'admin' }] },
];

function requiredPassword(variable, user) {
  const value = process.env[variable];
  if (!value) {
    // Thrown, not printed: mongosh exits non-zero, the entrypoint (set -e) stops, and the
    // container fails to start instead of running without the user.
    throw new Error(
      `10-app-user.js: environment variable ${variable} (the password of ${user}) is missing or empty; ` +
        'the data volume now holds a database without that user: fix the variable and either wipe the volume ' +
        'or run this script again by hand as root',
    );
  }
  return value;
}

function rolesText(roles) {
  return roles.map(({ role, db }) => `${role} on ${db}`).join(', ');
}

// Every password is read before any user is touched, so a missing one changes nothing.
const passwords = USERS.map(({ user, passwordVariable }) => requiredPassword(passwordVariable, user));

const admin = db.getSiblingDB('admin');
USERS.forEach(({ user, roles }, index) => {
  const definition = {
    pwd: passwords[index],
    roles,
    // SCRAM-SHA-256 only: every current driver negotiates it; SCRAM-SHA-1 is kept by default
    // for old clients only.
    mechanisms: ['SCRAM-SHA-256'],
  };
  if (admin.getUser(user) === null) {
    admin.createUser({ user, ...definition });
    print(`10-app-user.js: created ${user} (${rolesText(roles)})`);
  } else {
    admin.updateUser(user, definition);
    print(`10-app-user.js: updated ${user} (${rolesText(roles)})`);
  }
});
