/** Pages about an organization, for a session that has none (an ops account). */
export function NoOrganization({ title }: { title: string }) {
  return (
    <>
      <h1>{title}</h1>
      <p className="state state-empty">Your account does not belong to an organization, so there is nothing to show here.</p>
    </>
  );
}
