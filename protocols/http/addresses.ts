/**
 * Addresses: a user's list, add, read, update (display form, main flag), delete, and resolving an address to
 * its user. Internationalized addresses (UTF-8 local parts, IDN domains in Unicode or punycode) are stored in
 * their normalized form (storage/addresses.ts) and shown as the admin typed them. Writes pass the account
 * pipeline (`account.beforeAddress` / `account.address` / `account.afterAddress`).
 */
import { z } from 'zod';
import { addAddress, deleteAddress, updateAddress } from '../../hooks/pipeline/index.ts';
import { resolveAddress } from '../../storage/users.ts';
import type { AddressRecord } from '../../storage/ports.ts';
import { ApiError } from './errors.ts';
import { accountResult, id, iso, storageCall, userParams } from './common.ts';
import { route } from './route.ts';
import type { Route } from './route.ts';

const addressParams = userParams.extend({ address: id('address') });

const addressShape = z.object({ id: z.string(), name: z.string(), address: z.string(), main: z.boolean(), created: z.string(), tags: z.array(z.string()) });

function view(a: AddressRecord) {
  return { id: a.id, name: '', address: a.display, main: a.main, created: iso(a.created), tags: [] as string[] };
}

/** The user's address with this id (404 AddressNotFound when it is someone else's). */
async function ownAddress(list: AddressRecord[], addressId: string): Promise<AddressRecord> {
  const found = list.find((a) => a.id === addressId);
  if (!found) throw new ApiError('AddressNotFound');
  return found;
}

export const addressRoutes: Route[] = [
  route({
    method: 'GET',
    path: '/users/:user/addresses',
    summary: "List a user's addresses",
    tag: 'Addresses',
    access: 'owner',
    params: userParams,
    response: z.object({ results: z.array(addressShape) }),
    async handler({ app, user }) {
      return { results: (await app.storage.users.listAddresses(user.id)).map(view) };
    },
  }),

  route({
    method: 'POST',
    path: '/users/:user/addresses',
    summary: 'Add an address to a user',
    tag: 'Addresses',
    access: 'root',
    params: userParams,
    body: z.object({
      address: z.string().min(3).max(320).describe('Email address; UTF-8 local parts and IDN domains allowed'),
      main: z.boolean().optional().describe('Make it the main address (the first address always is)'),
    }),
    response: z.object({ id: z.string() }),
    async handler({ app, ctx, user, body }) {
      const created = accountResult(await addAddress(app, ctx, user.id, { address: body.address, main: body.main }), { exists: 'AddressExistsError', missing: 'UserNotFound' });
      return { id: created.id };
    },
  }),

  route({
    method: 'GET',
    path: '/users/:user/addresses/:address',
    summary: 'Read one address of a user',
    tag: 'Addresses',
    access: 'owner',
    params: addressParams,
    response: addressShape,
    async handler({ app, user, params }) {
      return view(await ownAddress(await app.storage.users.listAddresses(user.id), params.address));
    },
  }),

  route({
    method: 'PUT',
    path: '/users/:user/addresses/:address',
    summary: "Make an address the main one, or change how it is written (same address)",
    tag: 'Addresses',
    access: 'root',
    params: addressParams,
    body: z.object({
      address: z.string().min(3).max(320).optional().describe('New display form; must normalize to the same address'),
      main: z.literal(true).optional().describe('Make this the main address (one address is always main)'),
    }),
    async handler({ app, ctx, user, params, body }) {
      accountResult(await updateAddress(app, ctx, user.id, params.address, { display: body.address, main: body.main }), { missing: 'AddressNotFound' });
      return {};
    },
  }),

  route({
    method: 'DELETE',
    path: '/users/:user/addresses/:address',
    summary: 'Remove an address from a user',
    tag: 'Addresses',
    access: 'root',
    params: addressParams,
    async handler({ app, ctx, user, params }) {
      accountResult(await deleteAddress(app, ctx, user.id, params.address), { missing: 'AddressNotFound' });
      return {};
    },
  }),

  route({
    method: 'GET',
    path: '/addresses/resolve/:address',
    summary: 'Find the user an address belongs to (+tags and IDN forms resolve too)',
    tag: 'Addresses',
    access: 'root',
    params: z.object({ address: z.string().min(3).max(320) }),
    response: z.object({ id: z.string(), address: z.string(), user: z.string(), created: z.string(), tags: z.array(z.string()) }),
    async handler({ app, params }) {
      const found = await storageCall(() => resolveAddress(app.storage, params.address));
      if (!found) throw new ApiError('AddressNotFound');
      return { id: found.id, address: found.display, user: found.userId, name: '', targets: [], tags: [], created: iso(found.created) };
    },
  }),
];
